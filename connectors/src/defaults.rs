//! Defaults of the settings every connector shares, as serde `default`
//! functions: `#[serde(default = "crate::defaults::per_second::<5>")]`
//! names the vendor's documented pace where the field is declared.

/// Requests a second a connector makes when its settings name none.
pub(crate) fn per_second<const N: u32>() -> u32 {
    N
}

/// How long one request may take, in milliseconds, when its settings name none.
pub(crate) fn timeout_ms<const N: u64>() -> u64 {
    N
}
