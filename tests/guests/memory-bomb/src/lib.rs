//! Adversarial guest: allocates and touches 16 MiB chunks until something stops it.
//! Allocation failure aborts (a trap), as it would in any Rust program; if it is
//! never stopped (4 GiB is all a 32-bit memory can hold) it passes.
use kazi_sdk::prelude::*;

const CHUNK: usize = 16 << 20;

struct MemoryBomb;

impl Predicate for MemoryBomb {
    fn describe() -> Description {
        Description {
            name: "memory-bomb".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "allocates without bound".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(_config: Config, _cx: &Context) -> Result<Verdict> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        for i in 0..256usize {
            let mut chunk = vec![0u8; CHUNK];
            // Touch every page so the memory is really committed.
            for b in chunk.iter_mut().step_by(4096) {
                *b = (i & 0xff) as u8;
            }
            hoard.push(std::hint::black_box(chunk));
        }
        let total: usize = hoard.iter().map(Vec::len).sum();
        Ok(Verdict::pass(format!(
            "allocated {} MiB without being stopped",
            total >> 20
        )))
    }
}

export_predicate!(MemoryBomb);
