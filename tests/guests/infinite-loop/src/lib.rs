//! Adversarial guest: spins forever. Only the host's timeout can end it.
use kazi_sdk::prelude::*;

struct InfiniteLoop;

impl Predicate for InfiniteLoop {
    fn describe() -> Description {
        Description {
            name: "infinite-loop".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "never returns".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(_config: Config, _cx: &Context) -> Result<Verdict> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export_predicate!(InfiniteLoop);
