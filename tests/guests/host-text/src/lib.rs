//! Adversarial guest: makes the host build text from huge guest data. Config `what`:
//! - `exec-names`: asks 8 times to run a program whose name is 10 MiB long
//!   (denied: the denial quotes the name);
//! - `http-authority`: a `wasi:http` request to the authority in `authority`
//!   (denied unless granted; the denial must show what was asked);
//! - `evidence`: returns a 6 MiB summary, 6 MiB details and 20,000 diagnostics;
//! - `flood`: returns 400,000 diagnostics of 100 bytes (more than the host copies
//!   out of a guest in one call).
//!
//! It swallows every refusal and claims a pass.
use kazi_sdk::prelude::*;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, OutgoingRequest, Scheme};

struct HostText;

impl Predicate for HostText {
    fn describe() -> Description {
        Description {
            name: "host-text".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "feeds the host huge strings".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(config: Config, _cx: &Context) -> Result<Verdict> {
        match config.require_str("what")? {
            "exec-names" => {
                let name = "p".repeat(10 << 20);
                for _ in 0..8 {
                    let _ = exec::Command::new(name.clone()).run();
                }
                Ok(Verdict::pass("asked to run a 10 MiB program name 8 times"))
            }
            "http-authority" => {
                let authority = config.require_str("authority")?;
                let request = OutgoingRequest::new(Fields::new());
                let _ = request.set_scheme(Some(&Scheme::Http));
                let _ = request.set_authority(Some(authority));
                let _ = request.set_path_with_query(Some("/"));
                let outcome = match outgoing_handler::handle(request, None) {
                    Ok(f) => {
                        f.subscribe().block();
                        format!("{:?}", f.get().map(|r| r.map(|r| r.map(|r| r.status()))))
                    }
                    Err(e) => format!("{e:?}"),
                };
                Ok(Verdict::pass(format!("GET {authority}: {outcome}")))
            }
            "evidence" => {
                let big = "e".repeat(6 << 20);
                let mut v = Verdict::pass(big.clone()).with_details(big);
                for i in 0..20_000u32 {
                    v = v.with_diagnostic(Some("src/lib.rs"), Some(i), "d".repeat(64));
                }
                Ok(v)
            }
            "flood" => {
                let mut v = Verdict::pass("flood");
                for i in 0..400_000u32 {
                    v = v.with_diagnostic(None, Some(i), "d".repeat(100));
                }
                Ok(v)
            }
            other => Err(Error::new(format!("unknown `what`: {other}"))),
        }
    }
}

export_predicate!(HostText);
