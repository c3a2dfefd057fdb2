//! Writes a deterministic synthetic ticket export (`docs/offline-format.md`)
//! to stdout, for benchmarks:
//!
//! ```sh
//! cargo run --release --example gen_export -- --seed 42 --tickets 100000 --entries 1000000 > export.json
//! ```
//!
//! Every customer of `mappings/examples` appears; see `benches/gen/mod.rs`.

use std::io::Write;
use std::process::ExitCode;

#[path = "../benches/gen/mod.rs"]
mod generator;

const USAGE: &str = "usage: gen_export [--seed N] [--tickets N] [--entries N]
  --seed     seed of the random sequence (default 1); a bare number is taken as the seed
  --tickets  number of tickets (default 100000)
  --entries  number of work entries over all tickets (default 1000000)";

fn main() -> ExitCode {
    let mut cfg = generator::Config {
        tickets: 100_000,
        entries: 1_000_000,
        seed: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let target = match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--seed" => &mut cfg.seed,
            "--tickets" => &mut cfg.tickets,
            "--entries" => &mut cfg.entries,
            bare if bare.parse::<u64>().is_ok() => {
                cfg.seed = bare.parse().unwrap_or(1);
                continue;
            }
            other => {
                eprintln!("gen_export: unknown argument `{other}`\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        match args.next().map(|v| v.parse::<u64>()) {
            Some(Ok(v)) => *target = v,
            _ => {
                eprintln!("gen_export: `{arg}` needs a non-negative whole number\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match generator::write_export(&mut out, &cfg).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_export: {e}");
            ExitCode::from(1)
        }
    }
}
