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

pub use config::{KEYS, Spec};

/// The `http` predicate.
pub struct Http;

impl Predicate for Http {
    fn describe() -> Description {
        Description {
            name: "http".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary:
                "a live endpoint: status, body, JSON values and latency over N consecutive samples"
                    .into(),
            config_schema: config_schema(),
            // Which `host:port` it needs depends on the config: kazi grants this
            // builtin the one in its `url`, so it asks for nothing here.
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(config: Config, _cx: &Context) -> Result<Verdict> {
        let spec = Spec::parse(&config)?;
        Ok(probe::probe(&spec, &mut wasi::Wasi))
    }
}

export_predicate!(Http);

/// The JSON Schema (draft 2020-12) of the config, as the host validates goal files
/// against it at load time.
pub fn config_schema() -> Value {
    // One schema for every form: each keyword applies only to its own type, so a bad
    // value gets the message of its own form (700: "at most 599"; []: "at least 1 item").
    let code = |types: Value| {
        json!({
            "type": types,
            "minimum": 100,
            "maximum": 599,
            "pattern": "^([1-5][0-9][0-9]|[1-5][xX][xX])$"
        })
    };
    let mut status = code(json!(["integer", "string", "array"]));
    status["minItems"] = json!(1);
    status["items"] = code(json!(["integer", "string"]));
    status["description"] = json!(
        "The accepted status: a code (200), a class (\"2xx\"), or a list of them ([200, 204]). Default: any 2xx."
    );
    // The headers the client manages, refused at load in their usual spellings (the
    // parser refuses every spelling).
    let forbidden: serde_json::Map<String, Value> = config::FORBIDDEN_HEADERS
        .iter()
        .flat_map(|h| [h.to_string(), title_case(h)])
        .map(|h| (h, Value::Bool(false)))
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "http",
        "description": "Sends one request per sample to `url` and checks the answer's status, body, JSON values and latency; every sample must be healthy. No answer at all (connection refused, DNS failure, timeout) is an error, not a failure.",
        "type": "object",
        "additionalProperties": false,
        "required": ["url"],
        "properties": {
            "url": {
                "description": "The absolute http:// or https:// address to request, e.g. \"http://127.0.0.1:8080/healthz\". The predicate may reach this host and port and nothing else; redirects are not followed.",
                "type": "string",
                "minLength": 1,
                "pattern": "^https?://[^/?#@\\s]+([/?#]\\S*)?$"
            },
            "method": {
                "description": "The request method (default \"GET\").",
                "type": "string",
                "enum": config::METHODS,
                "default": "GET"
            },
            "headers": {
                "description": "Request headers, name to value, e.g. { Authorization = \"Bearer …\" }. Host, Content-Length, Connection, Transfer-Encoding and other hop-by-hop headers cannot be set.",
                "type": "object",
                "properties": forbidden,
                "additionalProperties": {"type": "string", "pattern": "^[^\\r\\n\\x00]*$"}
            },
            "body": {
                "description": "The request body, sent as is with its Content-Length; set Content-Type under `headers`.",
                "type": "string"
            },
            "expect_status": status,
            "expect_body": {
                "description": "The body must contain this text (or equal it, or match it as a regex; see `body_match`). Only the first 1 MiB of the body is read.",
                "type": "string"
            },
            "body_match": {
                "description": "How `expect_body` is compared: \"contains\" (default), \"exact\" (the whole body, byte for byte), or \"regex\" (Rust regex syntax with ASCII-only classes, matched anywhere in the body; `(?i)` ignores case, `(?m)` makes ^ and $ match at line breaks).",
                "type": "string",
                "enum": ["contains", "exact", "regex"],
                "default": "contains"
            },
            "expect_json": {
                "description": "The body is JSON, and each key is a path into it (\"$.status\", \"status\", \"$.items[0].name\", \"items[-1]\", \"$[\\\"dotted.key\\\"]\", \"$\") whose value must equal the given value (numbers compare by value).",
                "type": "object",
                "minProperties": 1,
                "additionalProperties": true
            },
            "max_latency_ms": {
                "description": "Each sample must be answered completely (headers and body) within this many milliseconds.",
                "type": "integer",
                "minimum": 1
            },
            "samples": {
                "description": "How many consecutive healthy answers are required (default 1, at most 100). The probe stops at the first unhealthy one. (samples - 1) × interval may total at most 5 minutes, and the whole evaluation must fit in the predicate's `timeout` (60 s by default).",
                "type": "integer",
                "minimum": 1,
                "maximum": config::MAX_SAMPLES,
                "default": 1
            },
            "interval": {
                "description": "The pause between two samples, e.g. \"500ms\", \"1s\", \"1m\" (default \"1s\", at most \"60s\").",
                "type": "string",
                "pattern": "^\\s*([0-9]+(\\.[0-9]+)?\\s*(ms|s|sec|secs|m|min|mins|h)\\s*)+$",
                "default": "1s"
            },
            "timeout_ms": {
                "description": "Per request: how long to wait for the connection, for the first byte of the answer, and between bytes of the answer, in milliseconds (default 10000, at most 300000).",
                "type": "integer",
                "minimum": 1,
                "maximum": config::MAX_TIMEOUT_MS,
                "default": 10000
            }
        },
        "not": {
            "description": "sets `body_match` without `expect_body`; add `expect_body` or remove `body_match`",
            "required": ["body_match"],
            "not": {"required": ["expect_body"]}
        }
    })
}

/// `content-length` → `Content-Length`.
fn title_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

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
    fn the_schema_lists_every_key_with_a_description() {
        let schema = config_schema();
        let props = schema["properties"].as_object().unwrap();
        let keys: Vec<&str> = props.keys().map(String::as_str).collect();
        let mut sorted_keys = KEYS.to_vec();
        sorted_keys.sort_unstable();
        let mut listed = keys.clone();
        listed.sort_unstable();
        assert_eq!(listed, sorted_keys);
        for (k, v) in props {
            assert!(
                v["description"].as_str().is_some_and(|d| d.len() > 10),
                "{k} has no description"
            );
        }
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(schema["required"], json!(["url"]));
    }

    #[test]
    fn schema_patterns_agree_with_the_parser() {
        let pattern = |key: &str| {
            regex_lite::Regex::new(
                config_schema()["properties"][key]["pattern"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap()
        };
        let interval = pattern("interval");
        for ok in ["500ms", "1s", "1.5s", "1m30s", "1m 30s", "10 sec"] {
            assert!(interval.is_match(ok), "{ok}");
            assert!(config::parse_duration(ok).is_ok(), "{ok}");
        }
        for bad in ["5", "soon", "1d", ""] {
            assert!(!interval.is_match(bad), "{bad}");
        }
        let url = pattern("url");
        assert!(url.is_match("http://127.0.0.1:8080/healthz"));
        assert!(url.is_match("https://example.com"));
        // The host derives the grant from `url` and expects a lower-case scheme.
        assert!(!url.is_match("HTTP://example.com"));
        assert!(!url.is_match("localhost:8080"));
        assert!(!url.is_match("http:///x"));
        assert!(!url.is_match("http://user:pw@h/"));
        assert!(!url.is_match("http://h/a b"));
        assert!(url.is_match("http://[::1]:8080/a?b=c#d"));
        let headers = &config_schema()["properties"]["headers"];
        assert_eq!(headers["properties"]["Content-Length"], json!(false));
        assert_eq!(headers["properties"]["host"], json!(false));
        let value =
            regex_lite::Regex::new(headers["additionalProperties"]["pattern"].as_str().unwrap())
                .unwrap();
        assert!(value.is_match("Bearer x") && !value.is_match("a\nb"));
        let status = regex_lite::Regex::new(
            config_schema()["properties"]["expect_status"]["pattern"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        for ok in ["200", "2xx", "5XX"] {
            assert!(status.is_match(ok), "{ok}");
            assert!(status::StatusExpectation::parse(&json!(ok)).is_ok(), "{ok}");
        }
        assert!(!status.is_match("6xx") && !status.is_match("ok"));
    }
}
