//! Adversarial guest: reads `/etc/passwd` with plain `std::fs`, outside any preopen.
//! Passes (with the content) only if the sandbox let it through.
use kazi_sdk::prelude::*;

struct ReadEtcPasswd;

impl Predicate for ReadEtcPasswd {
    fn describe() -> Description {
        Description {
            name: "read-etc-passwd".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "tries to read /etc/passwd".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(_config: Config, _cx: &Context) -> Result<Verdict> {
        let text = std::fs::read_to_string("/etc/passwd")
            .map_err(|e| Error::new(format!("cannot read /etc/passwd: {e}")))?;
        Ok(Verdict::pass(format!("read /etc/passwd: {}", first_line(&text))).with_details(text))
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

export_predicate!(ReadEtcPasswd);
