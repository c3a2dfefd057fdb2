//! Helpers shared by the integration tests.

use std::path::Path;
use std::sync::LazyLock;

use engine::ContractBook;

/// The five example contracts of `mappings/examples`, loaded once per test binary.
pub static BOOK: LazyLock<ContractBook> = LazyLock::new(|| {
    mapping::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("mappings/examples")
            .as_path(),
    )
    .unwrap_or_else(|e| panic!("the example mappings must load: {e:?}"))
    .book
});

/// Modest case counts (`PROPTEST_CASES` overrides); failures are reported,
/// not persisted to files.
#[allow(dead_code)] // not every test binary has property tests
pub fn config() -> proptest::prelude::ProptestConfig {
    proptest::prelude::ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    }
}
