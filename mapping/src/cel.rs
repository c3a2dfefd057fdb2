//! Conditions written in CEL over the canonical ticket.
//!
//! The variable `ticket` is a map with: `id`, `customer`, `requester`,
//! `title`, `priority` (1..4 or null), `raw_priority`, `category` (canonical,
//! or null), `raw_category`, `tags` (list), `fields` (map), `state` ("open",
//! "paused", "resolved" or null), `period_minutes` (double: ticket time in the
//! billed month; 0 when judging SLA), `onsite_visits` (int), `created_at`
//! (RFC 3339 string).

use std::collections::HashMap;
use std::sync::Arc;

use cel::Value;
use engine::condition::{Condition, TicketFacts};
use engine::ticket::FieldValue;
use rust_decimal::prelude::ToPrimitive;

/// A compiled CEL expression.
pub struct CelCondition {
    source: String,
    program: cel::Program,
}

impl std::fmt::Debug for CelCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CelCondition({:?})", self.source)
    }
}

impl CelCondition {
    /// Compiles `source`; the error text says what is wrong and where.
    pub fn compile(source: &str) -> Result<CelCondition, String> {
        let program = cel::Program::compile(source).map_err(|e| {
            format!(
                "invalid CEL expression: {}",
                e.to_string().lines().next().unwrap_or_default()
            )
        })?;
        let unknown: Vec<String> = program
            .references()
            .variables()
            .into_iter()
            .filter(|v| *v != "ticket")
            .map(str::to_owned)
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "unknown variable(s) {}: conditions can only use `ticket` (e.g. `ticket.priority <= 2`)",
                unknown.join(", ")
            ));
        }
        Ok(CelCondition {
            source: source.to_owned(),
            program,
        })
    }
}

fn text(s: &str) -> Value {
    Value::String(Arc::new(s.to_owned()))
}

fn field(v: &FieldValue) -> Value {
    match v {
        FieldValue::Null => Value::Null,
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::Int(i) => Value::Int(*i),
        FieldValue::Float(f) => Value::Float(*f),
        FieldValue::Text(s) => text(s),
        FieldValue::List(l) => Value::List(Arc::new(l.iter().map(field).collect())),
        FieldValue::Map(m) => Value::Map(cel::objects::Map::from(
            m.iter()
                .map(|(k, v)| (k.clone(), field(v)))
                .collect::<HashMap<String, Value>>(),
        )),
    }
}

/// The `ticket` value conditions see.
pub fn ticket_value(f: &TicketFacts<'_>) -> Value {
    let t = f.ticket;
    let opt = |s: Option<&str>| s.map_or(Value::Null, text);
    let mut m: HashMap<String, Value> = HashMap::with_capacity(14);
    m.insert("id".into(), text(t.id.as_str()));
    m.insert("customer".into(), text(t.customer.as_str()));
    m.insert("requester".into(), opt(t.requester.as_deref()));
    m.insert("title".into(), text(&t.title));
    m.insert(
        "priority".into(),
        f.priority
            .map_or(Value::Null, |p| Value::Int(i64::from(p.get()))),
    );
    m.insert("raw_priority".into(), opt(t.priority.as_deref()));
    m.insert("category".into(), opt(f.category));
    m.insert("raw_category".into(), opt(t.category.as_deref()));
    m.insert(
        "tags".into(),
        Value::List(Arc::new(t.tags.iter().map(|s| text(s)).collect())),
    );
    m.insert(
        "fields".into(),
        Value::Map(cel::objects::Map::from(
            t.fields
                .iter()
                .map(|(k, v)| (k.clone(), field(v)))
                .collect::<HashMap<String, Value>>(),
        )),
    );
    m.insert(
        "state".into(),
        f.state.map_or(Value::Null, |s| {
            text(match s {
                engine::values::ClockState::Open => "open",
                engine::values::ClockState::Paused => "paused",
                engine::values::ClockState::Resolved => "resolved",
            })
        }),
    );
    m.insert(
        "period_minutes".into(),
        Value::Float(f.period_minutes.value().to_f64().unwrap_or(0.0)),
    );
    m.insert(
        "onsite_visits".into(),
        Value::Int(i64::from(f.onsite_visits)),
    );
    m.insert("created_at".into(), text(&t.created_at.to_rfc3339()));
    Value::Map(cel::objects::Map::from(m))
}

impl Condition for CelCondition {
    fn source(&self) -> &str {
        &self.source
    }

    fn eval(&self, facts: &TicketFacts<'_>) -> Result<bool, String> {
        let mut ctx = cel::Context::default();
        ctx.add_variable_from_value("ticket", ticket_value(facts));
        match self.program.execute(&ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("the expression gave {other:?}, not true or false")),
            Err(e) => Err(e.to_string()),
        }
    }
}
