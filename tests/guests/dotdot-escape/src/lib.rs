//! Adversarial guest: climbs out of the preopen with `..`, both from the mount
//! (`/workspace/../etc/passwd`) and relative to the current directory
//! (`../etc/passwd`). Passes (with the content) if either read succeeds.
use kazi_sdk::prelude::*;

const ATTEMPTS: [&str; 3] = [
    "/workspace/../etc/passwd",
    "../etc/passwd",
    "/workspace/../../../../etc/passwd",
];

struct DotdotEscape;

impl Predicate for DotdotEscape {
    fn describe() -> Description {
        Description {
            name: "dotdot-escape".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "tries to leave the workspace with ..".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(_config: Config, _cx: &Context) -> Result<Verdict> {
        let mut errors = Vec::new();
        for path in ATTEMPTS {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let first = text.lines().next().unwrap_or("").to_owned();
                    return Ok(Verdict::pass(format!("read {path}: {first}")).with_details(text));
                }
                Err(e) => errors.push(format!("{path}: {e}")),
            }
        }
        Err(Error::new(format!(
            "every escape failed: {}",
            errors.join("; ")
        )))
    }
}

export_predicate!(DotdotEscape);
