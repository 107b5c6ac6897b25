//! Adversarial guest: 20,000 error-level log lines of 4 KiB (80 MiB), then a pass.
//! kazi's stderr must stay small without `-v`.
use kazi_sdk::__predicate_bindings::kazi::host::log::{Level, log};
use kazi_sdk::prelude::*;

struct LogFlood;

impl Predicate for LogFlood {
    fn describe() -> Description {
        Description {
            name: "log-flood".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "floods the host's log".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(_config: Config, _cx: &Context) -> Result<Verdict> {
        let line = "L".repeat(4096);
        for i in 0..20_000u32 {
            log(Level::Error, &format!("flood line {i}: {line}"));
        }
        Ok(Verdict::pass("logged 80 MiB"))
    }
}

export_predicate!(LogFlood);
