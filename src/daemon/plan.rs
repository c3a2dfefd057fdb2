//! The push plan `status` shows (issue 19): per target, the items waiting
//! and when the outbox should be through them within the target's request
//! budget (`outbox.limits.<target>`: per minute and per day; Xero's 60 and
//! 5,000 by default for a Xero target).
//!
//! The model: a batch of drafts costs one lookup and one create request
//! (one draft at a time: lookup, create and read back); any other item (a
//! report attachment) two. Requests go at the minute rate until the day's
//! budget is spent, then wait for the next day. The PDFs of drafts not yet
//! pushed add their attachments later; they are not counted.

use chrono::{DateTime, Duration, Utc};

use crate::settings::{RequestLimits, Settings};

#[derive(Clone, Debug, PartialEq)]
pub struct PushPlan {
    pub target: String,
    pub drafts_waiting: i64,
    pub others_waiting: i64,
    pub requests: i64,
    pub limits: RequestLimits,
    /// Drafts per create request.
    pub batch: usize,
    pub completes_at: DateTime<Utc>,
}

/// The budget of `target`: its `outbox.limits` entry, else Xero's published
/// limits for a Xero target, else its rate limiter's per-second rate.
pub fn limits_of(settings: &Settings, target: &str) -> Option<RequestLimits> {
    if let Some(l) = settings.outbox.limits.get(target) {
        return Some(l.clone());
    }
    let t = settings.targets.get(target)?;
    if matches!(t, connectors::TargetConfig::Xero(_)) {
        return Some(RequestLimits {
            per_minute: 60,
            per_day: 5_000,
        });
    }
    let per_second = t.requests_per_second()?;
    Some(RequestLimits {
        per_minute: per_second.saturating_mul(60).max(1),
        per_day: u32::MAX,
    })
}

/// Requests the waiting items cost.
pub fn requests(drafts: i64, others: i64, batch: usize) -> i64 {
    let batch = i64::try_from(batch.max(1)).unwrap_or(1);
    let drafts = if batch > 1 {
        2 * ((drafts + batch - 1) / batch)
    } else {
        3 * drafts
    };
    drafts + 2 * others
}

/// When `requests` are through at `limits`, starting at `now` with the
/// day's budget whole.
pub fn completion(requests: i64, limits: &RequestLimits, now: DateTime<Utc>) -> DateTime<Utc> {
    if requests <= 0 {
        return now;
    }
    let per_day = i64::from(limits.per_day.max(1));
    let per_minute = i64::from(limits.per_minute.max(1));
    let full_days = (requests - 1) / per_day;
    let rest = requests - full_days * per_day;
    let seconds = (rest * 60 + per_minute - 1) / per_minute;
    now + Duration::days(full_days) + Duration::seconds(seconds)
}

/// The plan of every target with items waiting (as the store counts them).
pub fn plans(
    settings: &Settings,
    waiting: &[store::WaitingTarget],
    now: DateTime<Utc>,
) -> Vec<PushPlan> {
    waiting
        .iter()
        .filter_map(|w| {
            let limits = limits_of(settings, &w.target)?;
            let batch = settings
                .targets
                .get(&w.target)
                .and_then(|t| t.accounting())
                .map_or(1, |a| a.batch_size().min(settings.outbox.batch))
                .max(1);
            let requests = requests(w.drafts, w.others, batch);
            Some(PushPlan {
                target: w.target.clone(),
                drafts_waiting: w.drafts,
                others_waiting: w.others,
                requests,
                completes_at: completion(requests, &limits, now),
                limits,
                batch,
            })
        })
        .collect()
}

impl PushPlan {
    pub fn line(&self) -> String {
        let day = if self.limits.per_day == u32::MAX {
            String::new()
        } else {
            format!(", {}/day", self.limits.per_day)
        };
        format!(
            "push plan {}: {} draft(s) and {} other item(s) waiting, ~{} request(s) ({} draft(s) a request) at {}/min{day}: through by {}",
            self.target,
            self.drafts_waiting,
            self.others_waiting,
            self.requests,
            self.batch,
            self.limits.per_minute,
            self.completes_at.format("%Y-%m-%d %H:%M UTC")
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "target": self.target,
            "drafts_waiting": self.drafts_waiting,
            "others_waiting": self.others_waiting,
            "requests": self.requests,
            "batch": self.batch,
            "per_minute": self.limits.per_minute,
            "per_day": (self.limits.per_day != u32::MAX).then_some(self.limits.per_day),
            "completes_at": self.completes_at.to_rfc3339(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XERO: RequestLimits = RequestLimits {
        per_minute: 60,
        per_day: 5_000,
    };

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_thousand_drafts_cost_forty_requests_in_batches_and_three_thousand_one_by_one() {
        assert_eq!(requests(1_000, 0, 50), 40);
        assert_eq!(requests(1_000, 0, 1), 3_000);
        assert_eq!(requests(49, 0, 50), 2);
        assert_eq!(requests(0, 10, 50), 20);
    }

    #[test]
    fn requests_go_at_the_minute_rate_and_wait_a_day_when_the_day_is_spent() {
        let now = at("2026-11-01T06:00:00Z");
        assert_eq!(completion(0, &XERO, now), now);
        assert_eq!(completion(40, &XERO, now), at("2026-11-01T06:00:40Z"));
        assert_eq!(completion(120, &XERO, now), at("2026-11-01T06:02:00Z"));
        // 4,250 requests: 71 minutes, within the day.
        assert_eq!(completion(4_250, &XERO, now), at("2026-11-01T07:10:50Z"));
        // 12,000: two days' budgets, then 2,000 at 60 a minute.
        assert_eq!(
            completion(12_000, &XERO, now),
            at("2026-11-03T06:00:00Z") + Duration::seconds(2_000)
        );
    }
}
