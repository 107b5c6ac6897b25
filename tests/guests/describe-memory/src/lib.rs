//! Adversarial guest: `describe` allocates and touches 200 MiB before answering.
//! Loading it must apply the predicate's memory budget (`--memory-mib`,
//! `limits.memory`) to `describe` too.
use kazi_sdk::prelude::*;

struct DescribeMemory;

impl Predicate for DescribeMemory {
    fn describe() -> Description {
        let mut hoard = vec![0u8; 200 << 20];
        for b in hoard.iter_mut().step_by(4096) {
            *b = 1;
        }
        std::hint::black_box(&hoard);
        Description {
            name: "describe-memory".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: format!("touched {} MiB in describe", hoard.len() >> 20),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(_config: Config, _cx: &Context) -> Result<Verdict> {
        Ok(Verdict::pass("evaluated"))
    }
}

export_predicate!(DescribeMemory);
