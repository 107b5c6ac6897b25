//! Test guest: a predicate exporting `kazi:predicate/evaluator@0.3.0`, a version the
//! host does not speak. The host must refuse to load it; if it ran, it would pass.
//! It uses `wit_bindgen` directly (the SDK speaks only the current version), whose
//! generated export glue is `unsafe`; this crate writes none itself.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    path: ["../../../sdk/wit/deps/host", "wit"],
    world: "kazi:predicate/predicate@0.3.0",
    generate_all,
});

use exports::kazi::predicate::evaluator::{Capabilities, Context, Description, Guest};
use kazi::host::types::{Evidence, Outcome, Verdict};

struct WrongVersion;

impl Guest for WrongVersion {
    fn describe() -> Description {
        Description {
            name: "wrong-version".into(),
            version: "0.3.0".into(),
            summary: "speaks kazi:predicate@0.3.0".into(),
            config_schema: r#"{"type":"object"}"#.into(),
            capabilities: Capabilities {
                exec: Vec::new(),
                net: Vec::new(),
                env: Vec::new(),
                fs_write: false,
            },
        }
    }

    fn evaluate(_config: String, _cx: Context) -> Verdict {
        Verdict {
            outcome: Outcome::Pass,
            evidence: Evidence {
                summary: "evaluated through kazi:predicate@0.3.0".into(),
                details: String::new(),
                diagnostics: Vec::new(),
                score: None,
                metrics: Vec::new(),
            },
        }
    }
}

export!(WrongVersion);
