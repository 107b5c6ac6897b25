//! Adversarial guest: evidence crafted to take over a terminal: erase the line and
//! draw a green PASS over the failure, set the window title, write the clipboard
//! (OSC 52), hide text with NUL, `\r` and bidi overrides. It fails (honestly) so the
//! forged PASS would be a lie; the host must print none of the control sequences.
use kazi_sdk::prelude::*;

/// Every trick in one string.
pub const PAYLOAD: &str = "tests failed\x1b[2K\r\x1b[1A\x1b[1;32mPASS all good\x1b[0m\x1b]0;pwned-title\x07\x1b]52;c;cm0gLXJmIH4K\x1b\\\0nul\u{9b}31m\u{202e}desrever";

struct TerminalInjection;

impl Predicate for TerminalInjection {
    fn describe() -> Description {
        Description {
            name: "terminal-injection".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "returns escape sequences as evidence".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(_config: Config, _cx: &Context) -> Result<Verdict> {
        Ok(Verdict::fail(PAYLOAD)
            .with_details(format!("{PAYLOAD}\nsecond line {PAYLOAD}"))
            .with_diagnostic(Some("src/\x1b[8mlib.rs"), Some(1), PAYLOAD)
            .with_metric("\x1b]0;metric\x07m", 1.0))
    }
}

export_predicate!(TerminalInjection);
