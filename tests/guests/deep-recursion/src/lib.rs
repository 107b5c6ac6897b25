//! Adversarial guest: unbounded non-tail recursion, until the stack runs out.
use kazi_sdk::prelude::*;

struct DeepRecursion;

fn recurse(n: u64) -> u64 {
    let x = std::hint::black_box(n);
    // Never true in practice (the stack runs out long before), but the optimiser
    // cannot know that, so the recursion stays real.
    if x == u64::MAX {
        return x;
    }
    // Non-tail: the addition happens after the call returns.
    recurse(x.wrapping_add(1)).wrapping_add(x)
}

impl Predicate for DeepRecursion {
    fn describe() -> Description {
        Description {
            name: "deep-recursion".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "recurses without bound".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(_config: Config, _cx: &Context) -> Result<Verdict> {
        let n = recurse(std::hint::black_box(0));
        Ok(Verdict::pass(format!("recursion returned {n}")))
    }
}

export_predicate!(DeepRecursion);
