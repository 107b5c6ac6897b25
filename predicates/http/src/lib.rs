//! The builtin `http` predicate: a live endpoint answers as expected.
//!
//! Sends `method` to `url` through `wasi:http` (the host lets this builtin reach the
//! `host:port` of its own `url`, nothing else) and judges the answer: the status
//! (`expect_status`, default any 2xx), the body (`expect_body` with `body_match`),
//! JSON values (`expect_json`) and latency (`max_latency_ms`), for `samples`
//! consecutive answers `interval` apart. An unhealthy answer is `fail`; no answer at
//! all to the first request (refused, DNS, timeout, denied) is `error`. The judging is pure
//! ([`check`], [`probe`]); only the `wasi` module touches the network. User
//! documentation: `docs/predicates/http.md`.

pub mod check;
pub mod config;
pub mod net;
pub mod probe;
pub mod status;
pub mod url;
mod wasi;

use kazi_sdk::prelude::*;

pub use config::{HttpConfig, Spec};

/// The `http` predicate.
pub struct Http;

impl Predicate<HttpConfig> for Http {
    fn describe() -> Description {
        Description {
            name: "http".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary:
                "a live endpoint: status, body, JSON values and latency over N consecutive samples"
                    .into(),
            // Which `host:port` it needs depends on the config: kazi grants this
            // builtin the one in its `url`, so it asks for nothing here.
            capabilities: Capabilities::default(),
            ..Description::default()
        }
    }

    fn validate(config: &HttpConfig) -> Vec<ConfigError> {
        Spec::build(config).err().unwrap_or_default()
    }

    fn evaluate(config: HttpConfig, _cx: &Context) -> Result<Verdict> {
        let spec = Spec::build(&config)
            .map_err(|e| Error::from(e.into_iter().next().expect("an error")))?;
        Ok(probe::probe(&spec, &mut wasi::Wasi))
    }
}

export_predicate!(Http);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_the_builtin_and_asks_for_nothing_fixed() {
        let d = Http::describe();
        assert_eq!(d.name, "http");
        assert!(d.capabilities.net.is_empty() && d.capabilities.exec.is_empty());
        assert!(!d.capabilities.fs_write);
    }

    #[test]
    fn the_schema_comes_from_the_config_type() {
        assert!(Http::describe().config_schema.is_null());
        let schema = HttpConfig::schema();
        let props = schema["properties"].as_object().unwrap();
        assert_eq!(props.len(), 12);
        for (k, v) in props {
            assert!(
                v["description"].as_str().is_some_and(|d| d.len() > 10),
                "{k} has no description"
            );
        }
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(schema["required"], json!(["url"]));
    }
}
