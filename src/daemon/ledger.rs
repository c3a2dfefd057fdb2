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

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use connectors::accounting::{AccountingApi, DraftStatus, RemoteInvoice, StatusStep};
use connectors::{ConnectorError, Draft, Push};
use engine::ContractBook;
use engine::contract::{Bank, BankTerm, Card, CardOpening, Prepaid, SaleOn, Sells};
use engine::minutes::Minutes;
use engine::money::Money;
use engine::period::Month;
use rust_decimal::Decimal;
use store::Sale;

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
        let sales = self.store.sales().await?;
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
                let Some(p) = renewal_item(contract, &sales, customer, &subject)
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
            let read = api.read_status(remote_id, &reference, step, &answer);
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
                .sales_request(&items, cursor.as_deref(), page)
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
        for line in &inv.lines {
            let Some(p) = contract.prepaid.get(&line.item) else {
                continue;
            };
            if !opens(p.on, inv.status) {
                continue;
            }
            let bought = inv.date.unwrap_or_else(|| now.date_naive());
            for sale in sales_of(target, customer.as_str(), &inv.id, inv, line, p, bought) {
                match sale {
                    Ok(sale) => {
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
                    Err(e) => report.source_errors.push(e),
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
        Ok(merge_sales(book, &sales))
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

/// `POST /webhooks/accounting/{target}`: Xero tells us invoices changed.
/// Signed with `x-xero-signature` (base64 HMAC-SHA256 of the raw body under
/// the target's `webhook_key`): a right signature is answered 200, a wrong
/// or missing one 401, both with an empty body, as Xero's intent-to-receive
/// handshake requires. Each invoice event is handled once (a delivery
/// repeated is answered 200 and changes nothing): the invoice is read, its
/// status stored if it is one of our drafts, and its prepaid sales opened.
pub async fn accounting_webhook(
    axum::extract::State(bridge): axum::extract::State<std::sync::Arc<Bridge>>,
    axum::extract::Path(target): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> (axum::http::StatusCode, String) {
    // Refusals (non-JSON 415, oversized 413) are counted like the rest.
    let answer = match (super::webhook::refuse_content_type(&headers), body) {
        (Some(refused), _) => refused,
        (None, Err(rejected)) => (rejected.status(), format!("{}\n", rejected.body_text())),
        (None, Ok(body)) => bridge.xero_webhook(&target, &headers, &body).await,
    };
    bridge.metrics.add_webhook(answer.0.as_u16());
    answer
}

impl Bridge {
    async fn xero_webhook(
        &self,
        target: &str,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> (axum::http::StatusCode, String) {
        use axum::http::StatusCode;
        use connectors::xero;
        // The handler's clock read: deliveries are remembered for a week.
        let now = Utc::now();
        let Some(connectors::TargetConfig::Xero(config)) = self.settings.targets.get(target) else {
            return (
                StatusCode::NOT_FOUND,
                format!("no Xero target named `{target}`\n"),
            );
        };
        let Some(key) = &config.webhook_key else {
            return (
                StatusCode::NOT_FOUND,
                format!("target `{target}` takes no webhooks (it has no webhook_key)\n"),
            );
        };
        let signature = headers
            .get("x-xero-signature")
            .and_then(|v| v.to_str().ok());
        if !xero::webhook_signed(key.expose(), body, signature) {
            return (StatusCode::UNAUTHORIZED, String::new());
        }
        let events = match xero::webhook_events(body) {
            Ok(e) => e,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("{}\n", crate::redact(&e.to_string())),
                );
            }
        };
        let source = format!("accounting:{target}");
        let mut report = CycleReport::default();
        for event in events.iter().filter(|e| e.category == "INVOICE") {
            let id = event.id();
            match self.store.delivery_seen(&source, &id).await {
                Ok(false) => {}
                Ok(true) => continue,
                Err(e) => {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("{}\n", crate::redact(&e.to_string())),
                    );
                }
            }
            if let Err(e) = self
                .invoice_changed(target, config, &event.resource_id, now, &mut report)
                .await
            {
                // Xero delivers again later; nothing was remembered.
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{}\n", crate::redact(&e.to_string())),
                );
            }
            let forget = now - chrono::Duration::days(7);
            if let Err(e) = self
                .store
                .remember_delivery(&source, &id, now, forget)
                .await
            {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{}\n", crate::redact(&e.to_string())),
                );
            }
        }
        (StatusCode::OK, String::new())
    }

    /// An invoice a webhook announced: its status if it is our draft, its sales.
    async fn invoice_changed(
        &self,
        target: &str,
        api: &dyn AccountingApi,
        invoice: &str,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), String> {
        let mapping = self.mapping_in_force().map_err(|e| e.to_string())?;
        let ours = self
            .store
            .draft_by_remote(target, invoice)
            .await
            .map_err(|e| e.to_string())?;
        let inv = self
            .remote_status(target, api, invoice, ours.as_deref().unwrap_or(""), report)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(key) = ours {
            self.store
                .set_remote_status(target, &key, inv.status.as_str(), now)
                .await
                .map_err(|e| e.to_string())?;
        }
        let book = self
            .book_with_sales(&mapping.book)
            .await
            .map_err(|e| e.to_string())?;
        self.record_sales(target, api, &book, &inv, now, report)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The prepaid item that renews a card or bank named by an event: the item
/// it was sold as, else (a card of the mapping's own) an item selling cards
/// of its size.
fn renewal_item<'a>(
    contract: &'a engine::contract::Contract,
    sales: &[Sale],
    customer: &str,
    subject: &str,
) -> Option<&'a Prepaid> {
    let sold = sales.iter().find(|s| {
        s.customer == customer
            && match s.kind.as_str() {
                "card" => subject == format!("punch card {} ({} punches)", s.bought, s.size),
                _ => subject == format!("{} (invoice {})", s.item, s.invoice),
            }
    });
    if let Some(s) = sold {
        return contract.prepaid.get(&s.item);
    }
    contract.prepaid.values().find(|p| match p.sells {
        Sells::Card { punches, .. } => subject.ends_with(&format!("({punches} punches)")),
        Sells::Bank { .. } => false,
    })
}

/// A draft selling the next card or bank: the item at its last price for
/// the customer (none when it was never sold to them: nothing to go by).
fn renewal_draft(
    contract: &engine::contract::Contract,
    sales: &[Sale],
    p: &Prepaid,
    subject: &str,
    month: Month,
    now: DateTime<Utc>,
    target: &str,
) -> Option<Draft> {
    let last = sales
        .iter()
        .filter(|s| s.customer == contract.customer.as_str() && s.item == p.item)
        .max_by(|a, b| a.bought.cmp(&b.bought))?;
    let refs = contract.accounting.get(target);
    Some(Draft {
        customer: contract.customer.to_string(),
        period: month.to_string(),
        revision: 1,
        currency: last
            .currency
            .clone()
            .unwrap_or_else(|| contract.currency.to_string()),
        total_net: last.price.clone(),
        date: now.with_timezone(&contract.tz).date_naive().to_string(),
        lines: vec![connectors::DraftLine {
            kind: match p.sells {
                Sells::Card { .. } => "card_purchase".into(),
                Sells::Bank { .. } => "bank_purchase".into(),
            },
            description: format!("{} (renews {subject})", p.item),
            quantity: "1".into(),
            unit_price: last.price.clone(),
            amount: last.price.clone(),
            tickets: Vec::new(),
            corrects: None,
            refs: Default::default(),
        }],
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

/// The cards or banks one invoice line sells: one per whole unit of its
/// quantity, each at its share of the line's amount.
fn sales_of(
    target: &str,
    customer: &str,
    invoice: &str,
    inv: &RemoteInvoice,
    line: &connectors::accounting::RemoteLine,
    p: &Prepaid,
    bought: NaiveDate,
) -> Vec<Result<Sale, String>> {
    let q = line.quantity;
    if q <= Decimal::ZERO || q.fract() != Decimal::ZERO {
        return vec![Err(format!(
            "{target}: invoice {invoice} line {} sells `{}` {q} times; a card or bank is sold in whole units, so nothing was opened",
            line.id, line.item
        ))];
    }
    let units = q.trunc().to_string().parse::<i64>().unwrap_or(1);
    let price = (line.amount / q).round_dp(2);
    (1..=units)
        .map(|unit| {
            let (kind, size, discount, valid_until) = match &p.sells {
                Sells::Card {
                    punches,
                    discount_percent,
                } => (
                    "card",
                    i64::from(*punches),
                    Some(discount_percent.normalize().to_string()),
                    None,
                ),
                Sells::Bank {
                    minutes,
                    valid_months,
                    ..
                } => (
                    "bank",
                    minutes_i64(*minutes),
                    None,
                    valid_months
                        .and_then(|m| add_months(bought, m))
                        .map(|d| d.to_string()),
                ),
            };
            Ok(Sale {
                target: target.to_owned(),
                invoice: invoice.to_owned(),
                line: line.id.clone(),
                unit,
                customer: customer.to_owned(),
                item: line.item.clone(),
                kind: kind.to_owned(),
                size,
                bought: bought.to_string(),
                price: format!("{price:.2}"),
                currency: inv.currency.clone(),
                discount,
                valid_until,
            })
        })
        .collect()
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

/// Does an invoice in `status` open what an item sold `on` it?
fn opens(on: SaleOn, status: DraftStatus) -> bool {
    match on {
        SaleOn::Paid => status == DraftStatus::Paid,
        SaleOn::Issued => status.is_issued(),
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
        .is_some_and(|(_, c)| c.prepaid.values().any(|p| opens(p.on, listed.status)))
}

fn minutes_i64(m: Minutes) -> i64 {
    m.value().trunc().to_string().parse().unwrap_or_default()
}

fn add_months(d: NaiveDate, months: u32) -> Option<NaiveDate> {
    d.checked_add_months(chrono::Months::new(months))
        .or_else(|| NaiveDate::from_ymd_opt(d.year(), d.month(), 1))
}

/// The book with every sold card and bank added to its customer's
/// contract. A sold card was invoiced by finance, so it carries an opening
/// of its full size: the engine draws from it and never invoices it again.
pub fn merge_sales(book: &ContractBook, sales: &[Sale]) -> ContractBook {
    let mut contracts = book.contracts.clone();
    for s in sales {
        let Some(c) = contracts.get_mut(s.customer.as_str()) else {
            continue;
        };
        let Ok(bought) = s.bought.parse::<NaiveDate>() else {
            continue;
        };
        let price = Money::new(s.price.parse().unwrap_or_default());
        match s.kind.as_str() {
            "card" => {
                let punches = u32::try_from(s.size).unwrap_or_default();
                c.cards.push(Card {
                    bought,
                    punches,
                    price,
                    discount_percent: s
                        .discount
                        .as_deref()
                        .and_then(|d| d.parse().ok())
                        .unwrap_or_default(),
                    opening: Some(CardOpening {
                        punches,
                        last_drawn: None,
                    }),
                });
                c.cards.sort_by_key(|k| k.bought);
            }
            "bank" => {
                let minutes = Minutes::whole(u32::try_from(s.size).unwrap_or_default());
                let low_balance = c.prepaid.get(&s.item).and_then(|p| match p.sells {
                    Sells::Bank { low_balance, .. } => low_balance,
                    Sells::Card { .. } => None,
                });
                c.banks.push(Bank {
                    name: format!("{} (invoice {})", s.item, s.invoice),
                    minutes,
                    term: BankTerm::Once {
                        from: bought,
                        until: s.valid_until.as_deref().and_then(|d| d.parse().ok()),
                    },
                    opening_balance: Some(minutes),
                    price: Some(price),
                    low_balance,
                    draw_order: u32::MAX,
                    covers: Default::default(),
                });
            }
            _ => {}
        }
    }
    ContractBook { contracts }
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

    #[test]
    fn a_sold_card_joins_the_contract_and_is_not_invoiced_again() {
        let book = mapping::load(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("mappings/examples/itech-klippekort.yaml")
                .as_path(),
        )
        .unwrap()
        .book;
        let before = book.contracts["nordhavn-arkitekter"].cards.len();
        let merged = merge_sales(&book, &[sale("card", 20, "2026-10-20")]);
        let cards = &merged.contracts["nordhavn-arkitekter"].cards;
        assert_eq!(cards.len(), before + 1);
        let sold = cards
            .iter()
            .find(|k| k.bought.to_string() == "2026-10-20")
            .unwrap();
        assert_eq!(sold.punches, 20);
        assert_eq!(sold.opening.map(|o| o.punches), Some(20));
        // A sale for a customer without a contract changes nothing.
        let mut stray = sale("card", 20, "2026-10-20");
        stray.customer = "nobody".into();
        let same = merge_sales(&book, &[stray]);
        assert_eq!(same.contracts["nordhavn-arkitekter"].cards.len(), before);
    }

    #[test]
    fn a_sold_bank_is_a_prepaid_block_from_its_invoice_date_to_its_validity() {
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
        let merged = merge_sales(&book, &[bank]);
        let b = merged.contracts["nordhavn-arkitekter"]
            .banks
            .last()
            .unwrap();
        assert_eq!(b.name, "TIMEBANK-10H (invoice inv-1)");
        assert_eq!(b.fresh_minutes(), Minutes::whole(600));
        assert_eq!(
            b.term,
            BankTerm::Once {
                from: "2026-10-05".parse().unwrap(),
                until: Some("2027-01-05".parse().unwrap())
            }
        );
        assert!(
            b.opening_balance.is_some(),
            "invoiced by finance, not by us"
        );
    }

    #[test]
    fn a_line_sells_one_card_per_whole_unit_and_refuses_a_fraction() {
        use connectors::accounting::RemoteLine;
        let p = Prepaid {
            item: "KLIPPEKORT-20".into(),
            sells: Sells::Card {
                punches: 20,
                discount_percent: Decimal::TEN,
            },
            on: SaleOn::Paid,
            renew: engine::contract::Renew::Nothing,
            renew_to: engine::contract::RenewTo::Note,
        };
        let inv = RemoteInvoice::with_status("inv-9", DraftStatus::Paid);
        let line = |q: i64, scale: u32| RemoteLine {
            id: "l-1".into(),
            item: "KLIPPEKORT-20".into(),
            quantity: Decimal::new(q, scale),
            amount: Decimal::new(36000, 0),
            description: String::new(),
        };
        let bought: NaiveDate = "2026-10-05".parse().unwrap();
        let two = sales_of("xero", "acme", "inv-9", &inv, &line(2, 0), &p, bought);
        let two: Vec<Sale> = two.into_iter().map(Result::unwrap).collect();
        assert_eq!(two.iter().map(|s| s.unit).collect::<Vec<_>>(), [1, 2]);
        assert!(two.iter().all(|s| s.price == "18000.00" && s.size == 20));
        let half = sales_of("xero", "acme", "inv-9", &inv, &line(15, 1), &p, bought);
        assert!(matches!(half.as_slice(), [Err(e)] if e.contains("whole units")));
    }
}
