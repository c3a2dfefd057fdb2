//! The bill document: what `contract-bridge bill` prints and the daemon stores.
//!
//! The fields named in `docs/offline-format.md` keep their names and meaning;
//! everything else here is an allowed extra (explanations, events, summaries).

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

use crate::minutes::Minutes;
use crate::money::{Currency, Money};
use crate::period::Month;
use crate::sla::Metric;
use crate::ticket::{CustomerKey, SourceName, TicketId, WorkId};
use crate::values::Priority;

/// An instant shown on a contract's wall clock, RFC 3339 with its offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime(pub DateTime<Tz>);

impl LocalTime {
    pub fn new(at: DateTime<Utc>, tz: Tz) -> LocalTime {
        LocalTime(at.with_timezone(&tz))
    }

    pub fn from_unix(secs: i64, tz: Tz) -> LocalTime {
        LocalTime::new(DateTime::from_timestamp(secs, 0).unwrap_or_default(), tz)
    }

    pub fn utc(self) -> DateTime<Utc> {
        self.0.with_timezone(&Utc)
    }
}

impl std::fmt::Display for LocalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, false))
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PeriodInfo {
    pub month: Month,
}

#[derive(Clone, Debug, Serialize)]
pub struct BillDocument {
    pub period: PeriodInfo,
    pub invoices: Vec<Invoice>,
    pub report: Vec<ReportRow>,
    pub balances: Vec<Balance>,
    pub sla: Vec<SlaRow>,
    pub sla_summary: Vec<SlaSummary>,
    pub events: Vec<Event>,
    pub warnings: Vec<String>,
    /// What add-ons drew from cards in the period besides tickets (itech's
    /// monthly check), so that a balance's use adds up; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_on_draws: Vec<AddOnDraw>,
}

impl BillDocument {
    /// The document of `month` before anything is billed in it.
    pub fn empty(month: crate::period::Month) -> Self {
        BillDocument {
            period: PeriodInfo { month },
            invoices: Vec::new(),
            report: Vec::new(),
            balances: Vec::new(),
            sla: Vec::new(),
            sla_summary: Vec::new(),
            events: Vec::new(),
            warnings: Vec::new(),
            add_on_draws: Vec::new(),
        }
    }
}

/// Punches an add-on drew at a month's end, from which cards.
#[derive(Clone, Debug, Serialize)]
pub struct AddOnDraw {
    pub customer: CustomerKey,
    pub add_on: String,
    pub draws: Vec<Draw>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Invoice {
    pub customer: CustomerKey,
    pub currency: Currency,
    pub total_net: Money,
    pub lines: Vec<InvoiceLine>,
}

/// What kind of charge a line is; accounting connectors map it to items/accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    MonthlyFee,
    AddOn,
    Work,
    MonthEndPunches,
    CallOut,
    CardPurchase,
    BankPurchase,
    ServiceCredit,
}

impl LineKind {
    /// The name the bill document and drafts use.
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::MonthlyFee => "monthly_fee",
            LineKind::AddOn => "add_on",
            LineKind::Work => "work",
            LineKind::MonthEndPunches => "month_end_punches",
            LineKind::CallOut => "call_out",
            LineKind::CardPurchase => "card_purchase",
            LineKind::BankPurchase => "bank_purchase",
            LineKind::ServiceCredit => "service_credit",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct InvoiceLine {
    pub kind: LineKind,
    pub description: String,
    pub quantity: rust_decimal::Decimal,
    pub unit_price: Money,
    pub amount: Money,
    pub tickets: Vec<TicketId>,
    pub explanation: Explanation,
}

/// The figures a line shows: `(quantity, unit price, amount)`.
///
/// `amount` is the line's exact amount (rule 5: exact, rounded once to
/// cents). A ledger that recomputes a line (Xero, QuickBooks, e-conomic)
/// multiplies the quantity and unit price it was sent, so the shown quantity
/// (at most four decimals) times the shown unit price (cents) must round to
/// the same amount. When it would not (77.5 min at 950.00/h: 1.2917 h ×
/// 950.00 = 1227.12, but the exact amount is 1227.08), the line shows
/// 1 × its amount instead; its description keeps the hours.
pub fn shown_figures(
    quantity: rust_decimal::Decimal,
    unit_price: Money,
    amount: Money,
) -> (rust_decimal::Decimal, Money, Money) {
    let amount = amount.to_cents();
    let q = quantity.round_dp(4).normalize();
    let unit = unit_price.to_cents();
    if (unit * q).to_cents() == amount {
        (q, unit, amount)
    } else {
        (rust_decimal::Decimal::ONE, amount, amount)
    }
}

/// How a line was derived.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Explanation {
    /// The contract rule or term behind the line.
    pub rule: String,
    /// A sentence a finance person can read.
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ExplainItem>,
}

/// One ticket's share of a work line.
#[derive(Clone, Debug, Serialize)]
pub struct ExplainItem {
    /// The ticket's source, where there is one (a daemon's store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceName>,
    pub ticket: TicketId,
    pub work: Vec<WorkId>,
    pub minutes_logged: Minutes,
    #[serde(skip_serializing_if = "Minutes::is_zero")]
    pub allowance_minutes: Minutes,
    #[serde(skip_serializing_if = "Minutes::is_zero")]
    pub travel_minutes: Minutes,
    pub minutes_rounded: Minutes,
    pub rounding: String,
    pub draws: Vec<Draw>,
    /// Minutes of this ticket on this line (billed per hour).
    pub minutes_on_line: Minutes,
}

/// Minutes drawn from a bank, a card or an allowance.
#[derive(Clone, Debug, Serialize)]
pub struct Draw {
    pub from: String,
    pub minutes: Minutes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub punches: Option<u32>,
    pub remaining_after: Minutes,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportRow {
    pub customer: CustomerKey,
    /// The ticket's source, where there is one (a daemon's store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceName>,
    pub ticket: TicketId,
    pub title: String,
    pub billable: bool,
    pub category: Option<String>,
    pub minutes_logged: Minutes,
    pub minutes_billed: Minutes,
    pub held: Option<String>,
    /// The rule that decided (or why none did).
    pub rule: String,
    pub draws: Vec<Draw>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Balance {
    pub customer: CustomerKey,
    pub name: String,
    pub remaining_minutes: Minutes,
    pub expires_at: Option<LocalTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_punches: Option<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SlaRow {
    pub customer: CustomerKey,
    /// The ticket's source, where there is one (a daemon's store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceName>,
    pub ticket: TicketId,
    pub metric: Metric,
    pub priority: Option<Priority>,
    pub target_minutes: i64,
    pub due_at: Option<LocalTime>,
    pub met_at: Option<LocalTime>,
    pub breached: bool,
    pub excluded: bool,
    pub warn_at: Option<LocalTime>,
    pub calendar: String,
    /// Clock minutes counted up to the met instant or `as_of`.
    pub elapsed_minutes: i64,
    /// Real minutes the ticket's state stopped the clock.
    pub stopped_minutes: i64,
}

/// Share of targets met per customer for the period (targets due in it).
#[derive(Clone, Debug, Serialize)]
pub struct SlaSummary {
    pub customer: CustomerKey,
    pub targets: u32,
    pub met_in_time: u32,
    /// Not met yet and not past due at `as_of`.
    pub pending: u32,
    pub breached: u32,
    pub excluded: u32,
    /// Met in time ÷ (met in time + breached), as a decimal string; null while none is decided.
    pub share_met: Option<rust_decimal::Decimal>,
    /// Breaches per canonical priority, `[p1, p2, p3, p4]`.
    pub breaches_by_priority: [u32; 4],
}

/// Something the daemon should push (a note, a tag, a message to finance).
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub customer: CustomerKey,
    pub at: LocalTime,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// Customer, instant, then what and where: a total order that does not
    /// depend on the order of tickets in the input.
    pub fn sort_key(&self) -> (&CustomerKey, LocalTime, u8, &str, Option<Metric>) {
        let (rank, subject, metric) = match &self.kind {
            EventKind::BankLow { bank, .. } => (0, bank.as_str(), None),
            EventKind::CardLow { card, .. } => (1, card.as_str(), None),
            EventKind::CardUsedUp { card } | EventKind::CardExpired { card, .. } => {
                (2, card.as_str(), None)
            }
            EventKind::SlaWarning { ticket, metric, .. } => (3, ticket.as_str(), Some(*metric)),
            EventKind::SlaBreach { ticket, metric, .. } => (4, ticket.as_str(), Some(*metric)),
        };
        (&self.customer, self.at, rank, subject, metric)
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    BankLow {
        bank: String,
        remaining_minutes: Minutes,
        threshold_minutes: Minutes,
    },
    CardUsedUp {
        card: String,
    },
    /// A card reached the end of its validity, or was forfeited for being
    /// idle, with punches left: they are lost (at: when it ended).
    CardExpired {
        card: String,
        forfeited_punches: u32,
    },
    CardLow {
        card: String,
        remaining_punches: u32,
    },
    /// `due_at` is null when the ticket was paused after the warning.
    SlaWarning {
        ticket: TicketId,
        metric: Metric,
        due_at: Option<LocalTime>,
        target_minutes: i64,
        calendar: String,
        stopped_minutes: i64,
    },
    SlaBreach {
        ticket: TicketId,
        metric: Metric,
        due_at: LocalTime,
        target_minutes: i64,
        calendar: String,
        stopped_minutes: i64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal::Decimal;
    use rust_decimal_macros::dec;

    fn money(d: Decimal) -> Money {
        Money::new(d)
    }

    #[test]
    fn a_line_a_ledger_would_recompute_differently_shows_one_times_its_amount() {
        // 77.5 min at 950.00/h: exact 1227.083… → 1227.08; 1.2917 × 950 = 1227.115.
        let hours = dec!(77.5) / dec!(60);
        let exact = money(dec!(950)).for_minutes(crate::minutes::Minutes::new(dec!(77.5)).unwrap());
        let (q, u, a) = shown_figures(hours, money(dec!(950)), exact);
        assert_eq!(
            (q, u.to_string(), a.to_string()),
            (dec!(1), "1227.08".into(), "1227.08".into())
        );
    }

    #[test]
    fn a_line_that_recomputes_to_its_amount_keeps_its_quantity() {
        // moneo: 77.5 min at 60.00/h: 1.2917 × 60 = 77.502 → 77.50, as exact.
        let (q, u, a) = shown_figures(dec!(77.5) / dec!(60), money(dec!(60)), money(dec!(77.50)));
        assert_eq!(
            (q, u, a),
            (dec!(1.2917), money(dec!(60)), money(dec!(77.50)))
        );
        // A unit price finer than cents is what `check` refuses in a mapping;
        // a derived one (a punch at 890.00/h × 50 min) is shown in cents.
        let unit = money(dec!(890)).for_minutes(crate::minutes::Minutes::whole(50));
        let (q, u, a) = shown_figures(dec!(3), unit, unit * dec!(3));
        assert_eq!(q * u.amount(), a.amount());
    }

    proptest! {
        /// Whatever the exact quantity and unit price, the shown quantity ×
        /// the shown unit price rounds to the shown amount, which is the
        /// exact amount rounded once (rule 5).
        #[test]
        fn shown_quantity_times_unit_price_is_the_amount(
            q in 0i64..10_000_000, q_scale in 0u32..7,
            u in 0i64..100_000_000, u_scale in 0u32..5,
        ) {
            let (q, u) = (Decimal::new(q, q_scale), money(Decimal::new(u, u_scale)));
            let exact = u * q;
            let (sq, su, sa) = shown_figures(q, u, exact);
            prop_assert_eq!(sa, exact.to_cents());
            prop_assert!(sq.scale() <= 4);
            prop_assert_eq!(su, su.to_cents());
            prop_assert_eq!((su * sq).to_cents(), sa);
        }
    }
}
