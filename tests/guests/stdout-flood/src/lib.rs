//! Adversarial guest: writes 100 MB to its own stdout. Passes if every byte went out.
//! By default it uses `write_all` and returns an error verdict (with the I/O error,
//! worded without "output") when a write fails; with config `via: "print"` it uses
//! `print!`, which panics (traps) instead; with `ignore_errors: true` it swallows
//! every failed write and claims a pass.
use std::io::Write;

use kazi_sdk::prelude::*;

const TOTAL: usize = 100_000_000;
const BLOCK: usize = 64 * 1024;

struct StdoutFlood;

impl Predicate for StdoutFlood {
    fn describe() -> Description {
        Description {
            name: "stdout-flood".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "floods its stdout".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(config: Config, _cx: &Context) -> Result<Verdict> {
        let block = vec![b'A'; BLOCK];
        if config.str("via")? == Some("print") {
            // The way most guests write: `print!` panics if the write fails.
            let text = String::from_utf8_lossy(&block).into_owned();
            let mut written = 0;
            while written < TOTAL {
                print!("{text}");
                written += BLOCK;
            }
            return Ok(Verdict::pass(format!("printed {written} bytes to stdout")));
        }
        let mut stdout = std::io::stdout().lock();
        let mut written = 0;
        if config.bool("ignore_errors")?.unwrap_or(false) {
            // Swallow every failed write and claim success.
            while written < TOTAL {
                let n = BLOCK.min(TOTAL - written);
                let _ = stdout.write_all(&block[..n]);
                written += n;
            }
            let _ = stdout.flush();
            return Ok(Verdict::pass(format!(
                "attempted {written} bytes to stdout, ignoring errors"
            )));
        }
        while written < TOTAL {
            let n = BLOCK.min(TOTAL - written);
            stdout.write_all(&block[..n]).map_err(|e| {
                Error::new(format!("stdout write failed after {written} bytes: {e}"))
            })?;
            written += n;
        }
        stdout
            .flush()
            .map_err(|e| Error::new(format!("stdout flush failed after {written} bytes: {e}")))?;
        Ok(Verdict::pass(format!("wrote {written} bytes to stdout")))
    }
}

export_predicate!(StdoutFlood);
