//! SLA clocks for 100,000 tickets with pauses, on the calendars of the example
//! mappings: a business-hours calendar with holidays (trinax, Stockholm), and a
//! 24/7 calendar with a weekly maintenance window (akte-sla, Warsaw).
//!
//! Run: `cargo bench --bench sla`. Each iteration computes both clocks
//! (first response and resolution) of every ticket.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use engine::calendar::Calendar;
use engine::contract::{Reopen, WarnAt};
use engine::sla::{ClockInput, Metric, run_clock};
use engine::values::ClockState;
use rust_decimal::Decimal;

const TICKETS: usize = 100_000;

struct Case {
    created: i64,
    states: Vec<(i64, ClockState)>,
    first_response: Option<i64>,
    resolved: Option<i64>,
}

/// splitmix64: deterministic, no dependency.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn cases() -> Vec<Case> {
    let mut rng = 42u64;
    let year_start = 1_767_225_600; // 2026-01-01T00:00:00Z
    (0..TICKETS)
        .map(|_| {
            let created = year_start + (next(&mut rng) % (300 * 86_400)) as i64;
            let mut t = created;
            let mut states = vec![(created, ClockState::Open)];
            // One to three pauses of up to two days each.
            for _ in 0..(1 + next(&mut rng) % 3) {
                t += 600 + (next(&mut rng) % (8 * 3600)) as i64;
                states.push((t, ClockState::Paused));
                t += 600 + (next(&mut rng) % (2 * 86_400)) as i64;
                states.push((t, ClockState::Open));
            }
            let first_response = (!next(&mut rng).is_multiple_of(10))
                .then(|| created + (next(&mut rng) % (6 * 3600)) as i64);
            let resolved = (!next(&mut rng).is_multiple_of(4))
                .then(|| t + (next(&mut rng) % (3 * 86_400)) as i64);
            if let Some(r) = resolved {
                states.push((r, ClockState::Resolved));
            }
            Case {
                created,
                states,
                first_response,
                resolved,
            }
        })
        .collect()
}

fn calendar(book: &engine::ContractBook, customer: &str) -> Arc<Calendar> {
    let c = &book.contracts[customer];
    c.terms[0]
        .1
        .sla
        .as_ref()
        .expect("the example has an SLA")
        .calendar
        .clone()
}

fn all_clocks(cal: &Calendar, cases: &[Case], as_of: i64) -> usize {
    let mut breached = 0;
    for c in cases {
        for (metric, met, target) in [
            (Metric::FirstResponse, c.first_response, 4 * 3600),
            (Metric::Resolution, c.resolved, 72 * 3600),
        ] {
            let o = run_clock(
                cal,
                &ClockInput {
                    metric,
                    created: c.created,
                    states: &c.states,
                    met,
                    as_of,
                    target,
                    warn: WarnAt::Share(Decimal::new(75, 2)),
                    reopen: Reopen::Continue,
                },
            );
            breached += usize::from(o.breached);
        }
    }
    breached
}

fn bench(cr: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let book = mapping::load(&root.join("mappings/examples"))
        .expect("the examples load")
        .book;
    let cases = cases();
    let as_of = 1_767_225_600 + 330 * 86_400;
    let mut group = cr.benchmark_group("sla_100k_tickets");
    group.sample_size(10);
    for (name, customer) in [
        ("business_hours_trinax", "alert-co"),
        ("24x7_maintenance_akte", "poznan-clinic"),
    ] {
        let cal = calendar(&book, customer);
        // Warm the per-year span cache once, as a running daemon would have it.
        all_clocks(&cal, &cases[..100], as_of);
        group.bench_function(name, |b| {
            b.iter(|| black_box(all_clocks(&cal, &cases, as_of)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
