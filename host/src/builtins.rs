//! The builtin predicate and profile components, compiled by `build.rs` and embedded
//! in the binary.

use std::sync::OnceLock;

use crate::sandbox::Source;

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// Each builtin as a [`Source`], made once: its bytes are shared, not copied, and its
/// digest is computed once per process however many predicates use it.
fn sources(
    cell: &'static OnceLock<Vec<Source>>,
    table: &'static [(&'static str, &'static [u8])],
    label: fn(&str) -> String,
) -> &'static [Source] {
    cell.get_or_init(|| {
        table
            .iter()
            .map(|(n, bytes)| Source::new(label(n), *bytes))
            .collect()
    })
}

/// Names of the builtin predicates, for messages and `--help`.
pub fn predicate_names() -> Vec<&'static str> {
    PREDICATES.iter().map(|(n, _)| *n).collect()
}

/// The builtin predicate called `name`.
pub fn predicate(name: &str) -> Option<Source> {
    static CELL: OnceLock<Vec<Source>> = OnceLock::new();
    let sources = sources(&CELL, PREDICATES, |n| format!("builtin `{n}`"));
    PREDICATES
        .iter()
        .position(|(n, _)| *n == name)
        .map(|i| sources[i].clone())
}

/// Names of the builtin profiles.
pub fn profile_names() -> Vec<&'static str> {
    PROFILES.iter().map(|(n, _)| *n).collect()
}

/// The builtin profile called `name`.
pub fn profile(name: &str) -> Option<Source> {
    static CELL: OnceLock<Vec<Source>> = OnceLock::new();
    let sources = sources(&CELL, PROFILES, |n| format!("builtin profile `{n}`"));
    PROFILES
        .iter()
        .position(|(n, _)| *n == name)
        .map(|i| sources[i].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builtin_is_one_source_shared_by_every_use() {
        let a = predicate("file").unwrap();
        let b = predicate("file").unwrap();
        assert!(std::sync::Arc::ptr_eq(&a.bytes, &b.bytes), "no copy");
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.digest(), crate::sandbox::digest_hex(&a.bytes));
        assert_eq!(a.label, "builtin `file`");
        assert_eq!(profile("claude").unwrap().label, "builtin profile `claude`");
        assert!(predicate("nope").is_none() && profile("nope").is_none());
    }
}
