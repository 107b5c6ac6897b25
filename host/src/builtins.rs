//! The builtin predicate and profile components, compiled by `build.rs` and embedded
//! in the binary.

use crate::sandbox::Source;

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// Names of the builtin predicates, for messages and `--help`.
pub fn predicate_names() -> Vec<&'static str> {
    PREDICATES.iter().map(|(n, _)| *n).collect()
}

/// The builtin predicate called `name`.
pub fn predicate(name: &str) -> Option<Source> {
    PREDICATES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, bytes)| Source::new(format!("builtin `{n}`"), *bytes))
}

/// Names of the builtin profiles.
pub fn profile_names() -> Vec<&'static str> {
    PROFILES.iter().map(|(n, _)| *n).collect()
}

/// The builtin profile called `name`.
pub fn profile(name: &str) -> Option<Source> {
    PROFILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, bytes)| Source::new(format!("builtin profile `{n}`"), *bytes))
}
