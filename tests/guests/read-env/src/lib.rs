//! Adversarial guest: looks for environment variables. Passes with every visible
//! `NAME=value` (and the one named in config `name`), errors if none is visible.
use kazi_sdk::prelude::*;

struct ReadEnv;

impl Predicate for ReadEnv {
    fn describe() -> Description {
        Description {
            name: "read-env".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "tries to read the environment".into(),
            config_schema: json!({"type": "object", "properties": {"name": {"type": "string"}}}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(config: Config, _cx: &Context) -> Result<Verdict> {
        let mut seen: Vec<String> = std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect();
        let mut named_error = None;
        if let Some(name) = config.str("name")? {
            match std::env::var(name) {
                Ok(value) => {
                    let entry = format!("{name}={value}");
                    if !seen.contains(&entry) {
                        seen.push(entry);
                    }
                }
                Err(e) => named_error = Some(format!("{name}: {e}")),
            }
        }
        if seen.is_empty() {
            let mut msg = "no environment visible".to_owned();
            if let Some(e) = named_error {
                msg.push_str(&format!(" ({e})"));
            }
            return Err(Error::new(msg));
        }
        Ok(Verdict::pass(format!("visible: {}", seen.join(" "))).with_details(seen.join("\n")))
    }
}

export_predicate!(ReadEnv);
