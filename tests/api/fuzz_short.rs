//! The fuzz targets of `fuzz/` in short: every input of their corpora
//! (`fuzz/corpus/<target>/`, committed), then random inputs and random
//! mutations of the corpus through proptest. None may panic. The long runs
//! are `cargo fuzz run <target>` (fuzz/README.md).

#[path = "../fuzzing/harness.rs"]
mod harness;

use std::path::PathBuf;

use proptest::prelude::*;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!inputs.is_empty(), "{} is empty", dir.display());
    inputs
}

/// A corpus input with a few bytes changed, inserted or cut: most stay
/// close enough to the format to reach deep into the parser.
fn mutated(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = corpus(target);
    let n = seeds.len();
    (
        0..n,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8),
    )
        .prop_map(move |(i, edits)| {
            let mut b = seeds[i].clone();
            for (at, byte, op) in edits {
                if b.is_empty() {
                    b.push(byte);
                    continue;
                }
                let at = at.index(b.len());
                match op {
                    0 => b[at] = byte,
                    1 => b.insert(at, byte),
                    2 => {
                        b.remove(at);
                    }
                    // Cut short: a body that ends mid-way.
                    _ => b.truncate(at),
                }
            }
            b
        })
}

fn input(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        ".{0,128}".prop_map(String::into_bytes),
        mutated(target),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

macro_rules! target {
    ($corpus:ident, $random:ident, $name:literal, $f:path) => {
        #[test]
        fn $corpus() {
            for input in corpus($name) {
                $f(&input);
            }
        }

        proptest! {
            #![proptest_config(config())]
            #[test]
            fn $random(data in input($name)) {
                $f(&data);
            }
        }
    };
}

target!(export_corpus, export_random, "export", harness::export);
target!(mapping_corpus, mapping_random, "mapping", harness::mapping);
target!(
    webhooks_corpus,
    webhooks_random,
    "webhooks",
    harness::webhooks
);
target!(render_corpus, render_random, "render", harness::render);

#[test]
fn a_column_wider_than_65535_characters_is_rendered_not_a_panic() {
    let title = "x".repeat(70_000);
    let out = contract_bridge::render::table(
        &["ticket", "title"],
        &[
            vec!["T-1".into(), title.clone()],
            vec![
                "T-2".into(),
                "short".into(),
                "a cell past the header".into(),
            ],
        ],
    );
    assert!(out.contains(&title));
    // The short cell is padded to the long one's width.
    let line = out.lines().nth(1).unwrap();
    assert_eq!(line.chars().count(), 2 + 6 + 2 + 70_000, "the rule line");
    assert!(out.contains("a cell past the header"));
}
