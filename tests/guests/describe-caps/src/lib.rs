//! Adversarial guest: `describe` declares 200,000 programs it wants to run (each
//! name 16 bytes). Loading it must fail with a short message, not a list of them all.
use kazi_sdk::prelude::*;

struct DescribeCaps;

impl Predicate for DescribeCaps {
    fn describe() -> Description {
        Description {
            name: "describe-caps".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "asks for everything".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities {
                exec: (0..200_000).map(|i| format!("program-{i:08}")).collect(),
                ..Capabilities::default()
            },
        }
    }

    fn evaluate(_config: Config, _cx: &Context) -> Result<Verdict> {
        Ok(Verdict::pass("evaluated"))
    }
}

export_predicate!(DescribeCaps);
