//! `contract-bridge bill` in three pieces, on a synthetic export generated in
//! memory (`benches/gen/mod.rs`, the same generator as `examples/gen_export.rs`):
//!
//! - `parse`: `contract_bridge::export::parse` of the export text;
//! - `bill`: `engine::bill` for 2026-10 on the parsed tickets, with the five
//!   contracts of `mappings/examples`;
//! - `parse+bill+json`: both, plus serialising the bill document.
//!
//! The size here is a tenth of the target (10,000 tickets, 100,000 work
//! entries) so that `cargo bench` stays short; `scripts/bench.sh` measures the
//! whole command on the full size. Nothing here asserts a time.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine::period::Month;

#[path = "gen/mod.rs"]
mod generator;

const TICKETS: u64 = 10_000;
const ENTRIES: u64 = 100_000;
const SEED: u64 = 42;
const PERIOD: &str = "2026-10";

fn export_text() -> String {
    let mut bytes = Vec::new();
    generator::write_export(
        &mut bytes,
        &generator::Config {
            tickets: TICKETS,
            entries: ENTRIES,
            seed: SEED,
        },
    )
    .expect("writing to memory cannot fail");
    String::from_utf8(bytes).expect("the generator writes UTF-8")
}

fn benches(c: &mut Criterion) {
    let text = export_text();
    let file = Path::new("synthetic.json");
    let mappings = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/examples");
    let book = match mapping::load(&mappings) {
        Ok(loaded) => loaded.book,
        Err(d) => panic!(
            "{}: the example mappings must load:\n{d}",
            mappings.display()
        ),
    };
    let period: Month = PERIOD.parse().expect("a valid month");
    let tickets = contract_bridge::export::parse(file, &text).expect("the synthetic export parses");
    // The bench is only meaningful if the whole command would succeed.
    engine::bill(&book, &tickets, period, None).expect("the synthetic export bills");
    let label = format!("{}k_tickets_{}k_entries", TICKETS / 1000, ENTRIES / 1000);

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function(&label, |b| {
        b.iter(|| contract_bridge::export::parse(file, black_box(&text)).expect("parses"))
    });
    group.finish();

    let mut group = c.benchmark_group("bill");
    group.throughput(Throughput::Elements(ENTRIES));
    group.bench_function(&label, |b| {
        b.iter(|| engine::bill(&book, black_box(&tickets), period, None).expect("bills"))
    });
    group.finish();

    let mut group = c.benchmark_group("parse+bill+json");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function(&label, |b| {
        b.iter(|| {
            let tickets = contract_bridge::export::parse(file, black_box(&text)).expect("parses");
            let doc = engine::bill(&book, &tickets, period, None).expect("bills");
            drop(tickets);
            serde_json::to_vec(&doc).expect("serialises")
        })
    });
    group.finish();
}

criterion_group! {
    name = bill;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    targets = benches
}
criterion_main!(bill);
