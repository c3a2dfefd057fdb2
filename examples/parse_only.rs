//! Reads a ticket export and only parses it, the baseline `scripts/bench.sh`
//! compares `contract-bridge bill` with. Prints the number of tickets on
//! stdout and the time of each phase on stderr.
//!
//! ```sh
//! cargo run --release --example parse_only -- export.json
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: parse_only EXPORT.json");
        return ExitCode::from(2);
    };
    let path = Path::new(&path);
    let start = Instant::now();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let read = start.elapsed();
    let tickets = match contract_bridge::export::parse(path, &text) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let parsed = start.elapsed();
    let entries: usize = tickets.iter().map(|t| t.work.len()).sum();
    println!("{}", tickets.len());
    drop(tickets);
    drop(text);
    eprintln!(
        "parse_only: {} bytes, {entries} work entries; read {:.3} s, parse {:.3} s, drop {:.3} s",
        std::fs::metadata(path).map_or(0, |m| m.len()),
        read.as_secs_f64(),
        (parsed - read).as_secs_f64(),
        (start.elapsed() - parsed).as_secs_f64()
    );
    ExitCode::SUCCESS
}
