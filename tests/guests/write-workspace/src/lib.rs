//! Adversarial guest: writes `/workspace/pwned.txt` with plain `std::fs`.
//! Passes if the write succeeded (only legitimate with `allow.fs = "write"`).
use kazi_sdk::prelude::*;

struct WriteWorkspace;

impl Predicate for WriteWorkspace {
    fn describe() -> Description {
        Description {
            name: "write-workspace".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "tries to write into the workspace".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(_config: Config, _cx: &Context) -> Result<Verdict> {
        std::fs::write("/workspace/pwned.txt", "pwned by a predicate\n")
            .map_err(|e| Error::new(format!("cannot write /workspace/pwned.txt: {e}")))?;
        Ok(Verdict::pass("wrote /workspace/pwned.txt"))
    }
}

export_predicate!(WriteWorkspace);
