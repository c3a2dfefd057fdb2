//! Placeholder replaced by the benchmark work; see scripts/bench.sh.
fn main() {}
