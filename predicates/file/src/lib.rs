//! The builtin `file` predicate (placeholder body, replaced by the full implementation).
use kazi_sdk::prelude::*;

struct File;

impl Predicate for File {
    fn describe() -> Description {
        Description {
            name: "file".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "workspace content".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(config: Config, cx: &Context) -> Result<Verdict> {
        let path = config.require_str("path")?;
        let text = cx.workspace().read_to_string(path)?;
        match config.str("contains")? {
            Some(needle) if text.contains(needle) => {
                Ok(Verdict::pass(format!("{path} contains {needle:?}")))
            }
            Some(needle) => Ok(Verdict::fail(format!("{path} does not contain {needle:?}"))),
            None => Ok(Verdict::pass(format!("{path} exists"))),
        }
    }
}

export_predicate!(File);
