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
