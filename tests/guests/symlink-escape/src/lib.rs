//! Adversarial guest: reads through a symlink the test planted in the workspace
//! (config `path`, default `/workspace/link`), which points outside it.
//! Passes (with the content) if the read succeeds.
use kazi_sdk::prelude::*;

struct SymlinkEscape;

impl Predicate for SymlinkEscape {
    fn describe() -> Description {
        Description {
            name: "symlink-escape".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "tries to read outside the workspace through a symlink".into(),
            config_schema: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(config: Config, _cx: &Context) -> Result<Verdict> {
        let path = config.str("path")?.unwrap_or("/workspace/link");
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::new(format!("cannot read {path}: {e}")))?;
        let first = text.lines().next().unwrap_or("").to_owned();
        Ok(Verdict::pass(format!("read {path}: {first}")).with_details(text))
    }
}

export_predicate!(SymlinkEscape);
