//! Adversarial guest: hoards host resources until something stops it, then swallows
//! the failure and claims a pass. Config `what`:
//! - `fields` (default): `wasi:http` header maps, each filled to its size limit;
//! - `files`: open handles on the workspace file `path` (default `a.txt`);
//! - `kv`: kv entries of 64 KiB;
//! - `fuel`: one host call carrying 64 MiB (a log line).
//!
//! The summary says how far it got; the host must end it as an `error` naming the
//! limit, with its own memory bounded.
use kazi_sdk::prelude::*;
use wasip2::http::types::Fields;

struct ResourceHoard;

impl Predicate for ResourceHoard {
    fn describe() -> Description {
        Description {
            name: "resource-hoard".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "hoards host resources".into(),
            config_schema: json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(config: Config, _cx: &Context) -> Result<Verdict> {
        match config.str("what")?.unwrap_or("fields") {
            "fields" => {
                // 8 KiB per map: under the per-map size limit, so only the number of
                // maps held can stop it.
                let value = vec![b'v'; 1024];
                let mut hoard = Vec::new();
                for i in 0..100_000u32 {
                    let fields = Fields::new();
                    for j in 0..8u32 {
                        if fields.append(&format!("x-{i}-{j}"), &value).is_err() {
                            break;
                        }
                    }
                    hoard.push(fields);
                }
                Ok(Verdict::pass(format!(
                    "hoarded {} header maps",
                    hoard.len()
                )))
            }
            "files" => {
                let path = format!("/workspace/{}", config.str("path")?.unwrap_or("a.txt"));
                let mut hoard = Vec::new();
                let mut stopped = String::new();
                for _ in 0..100_000u32 {
                    match std::fs::File::open(&path) {
                        Ok(f) => hoard.push(f),
                        Err(e) => {
                            stopped = e.to_string();
                            break;
                        }
                    }
                }
                Ok(Verdict::pass(format!(
                    "held {} open files (stopped by: {stopped})",
                    hoard.len()
                )))
            }
            "kv" => {
                let value = vec![7u8; 64 * 1024];
                for i in 0..100_000u32 {
                    kv::set(&format!("key-{i}"), &value);
                }
                Ok(Verdict::pass("stored 6 GiB of kv state"))
            }
            "fuel" => {
                log::warn(&"x".repeat(64 << 20));
                Ok(Verdict::pass("passed 64 MiB to the host in one call"))
            }
            other => Err(Error::new(format!("unknown `what`: {other}"))),
        }
    }
}

export_predicate!(ResourceHoard);
