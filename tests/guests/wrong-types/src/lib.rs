//! Test guest: exports `kazi:predicate/evaluator@0.1.0` with a correct `describe`
//! but an `evaluate` of another type. Loading it must say its exports have the
//! wrong types, not that `describe` failed. It uses `wit_bindgen` directly, whose
//! generated export glue is `unsafe`; this crate writes none itself.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    path: "wit",
    world: "kazi:predicate/predicate@0.1.0",
    generate_all,
});

use exports::kazi::predicate::evaluator::{Capabilities, Description, Guest};

struct WrongTypes;

impl Guest for WrongTypes {
    fn describe() -> Description {
        Description {
            name: "wrong-types".into(),
            version: "0.1.0".into(),
            summary: "evaluate returns a string".into(),
            config_schema: r#"{"type":"object"}"#.into(),
            capabilities: Capabilities {
                exec: Vec::new(),
                net: Vec::new(),
                env: Vec::new(),
                fs_write: false,
            },
        }
    }

    fn evaluate(_config: String, _iteration: u32) -> String {
        "pass".into()
    }
}

export!(WrongTypes);
