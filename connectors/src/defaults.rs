//! Defaults of a connector's settings, as serde `default` functions:
//! `#[serde(default = "crate::defaults::per_second::<5>")]` names the
//! vendor's documented pace where the field is declared, and
//! [`defaults!`] declares the vendor's own (its URLs, …) one line each.

/// Requests a second a connector makes when its settings name none.
pub(crate) fn per_second<const N: u32>() -> u32 {
    N
}

/// How long one request may take, in milliseconds, when its settings name none.
pub(crate) fn timeout_ms<const N: u64>() -> u64 {
    N
}

/// Serde `default` functions, one line each: `NAME = "text";` declares
/// `fn NAME() -> String`, `NAME: TYPE = EXPR;` declares `fn NAME() -> TYPE`.
///
/// ```ignore
/// crate::defaults::defaults! {
///     default_base = "https://api.fortnox.se/3";
///     default_minor: u32 = 75;
/// }
/// ```
macro_rules! defaults {
    () => {};
    ($name:ident = $text:literal; $($rest:tt)*) => {
        fn $name() -> String {
            $text.into()
        }
        $crate::defaults::defaults! { $($rest)* }
    };
    ($name:ident: $ty:ty = $value:expr; $($rest:tt)*) => {
        fn $name() -> $ty {
            $value
        }
        $crate::defaults::defaults! { $($rest)* }
    };
}
pub(crate) use defaults;
