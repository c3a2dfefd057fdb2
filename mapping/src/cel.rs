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
use std::sync::LazyLock;

use cel::Value;
use engine::condition::{Condition, TicketFacts};
use engine::ticket::FieldValue;
use rust_decimal::prelude::ToPrimitive;

/// The CEL standard library, built once: `Context::default()` would rebuild
/// it for every evaluation (85 % of a customer's billing time with an SLA
/// exclusion, measured).
static STDLIB: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

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
        // The parser and the evaluator recurse: refuse what would overflow the stack.
        if bracket_depth(source) > MAX_BRACKET_DEPTH {
            return Err(format!(
                "the expression nests brackets more than {MAX_BRACKET_DEPTH} deep: split it into simpler conditions"
            ));
        }
        let program = cel::Program::compile(source).map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            // `ERROR: <input>:1:19: Syntax error: ...`: say where in the expression.
            match first
                .strip_prefix("ERROR: <input>:")
                .and_then(|rest| rest.split_once(": "))
                .and_then(|(pos, msg)| Some((pos.split_once(':')?, msg)))
            {
                Some((("1", col), msg)) => {
                    format!("invalid CEL expression, at character {col} of it: {msg}")
                }
                Some(((line, col), msg)) => {
                    format!("invalid CEL expression, at line {line}, character {col} of it: {msg}")
                }
                None => format!("invalid CEL expression: {first}"),
            }
        })?;
        let (depth, bound) = shape(program.expression());
        if depth > MAX_EXPR_DEPTH {
            return Err(format!(
                "the expression is too deeply nested ({depth} levels, at most {MAX_EXPR_DEPTH}): split it into simpler conditions"
            ));
        }
        let mut unknown: Vec<String> = program
            .references()
            .variables()
            .into_iter()
            .filter(|v| *v != "ticket" && !bound.contains(*v))
            .map(str::to_owned)
            .collect();
        unknown.sort();
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

/// Deepest bracket nesting the parser is given.
const MAX_BRACKET_DEPTH: usize = 16;
/// Deepest expression tree the evaluator is given.
const MAX_EXPR_DEPTH: usize = 24;

/// Nesting depth of `(`, `[` and `{` outside string literals.
fn bracket_depth(source: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for ch in source.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            '"' | '\'' => quote = Some(ch),
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Depth of the expression tree, and the names that macros such as
/// `exists(t, ...)` bind. Walks with an explicit stack: the tree may be deep.
fn shape(root: &cel::IdedExpr) -> (usize, std::collections::HashSet<String>) {
    use cel::common::ast::Expr;
    let mut bound = std::collections::HashSet::new();
    let mut max = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        let mut children: Vec<&cel::IdedExpr> = Vec::new();
        match &e.expr {
            Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => {}
            Expr::Call(call) => {
                children.extend(call.target.as_deref());
                children.extend(call.args.iter());
            }
            Expr::Comprehension(c) => {
                bound.insert(c.iter_var.clone());
                bound.extend(c.iter_var2.clone());
                bound.insert(c.accu_var.clone());
                children.extend([
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ]);
            }
            Expr::List(l) => children.extend(l.elements.iter()),
            Expr::Select(sel) => children.push(&sel.operand),
            Expr::Map(m) => entries(&m.entries, &mut children),
            Expr::Struct(st) => entries(&st.entries, &mut children),
        }
        stack.extend(children.into_iter().map(|c| (c, d + 1)));
    }
    (max, bound)
}

fn entries<'a>(list: &'a [cel::common::ast::IdedEntryExpr], out: &mut Vec<&'a cel::IdedExpr>) {
    use cel::common::ast::EntryExpr;
    for en in list {
        match &en.expr {
            EntryExpr::StructField(f) => out.push(&f.value),
            EntryExpr::MapEntry(me) => {
                out.push(&me.key);
                out.push(&me.value);
            }
        }
    }
}

/// Evaluation errors on one line: they end up in a one-line warning.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
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
        let mut ctx = cel::Context::with_env(STDLIB.clone());
        ctx.add_variable_from_value("ticket", ticket_value(facts));
        match self.program.execute(&ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("the expression gave {other:?}, not true or false")),
            Err(e) => Err(one_line(&e.to_string())),
        }
    }
}
