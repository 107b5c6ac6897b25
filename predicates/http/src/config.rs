//! The config: parsed and checked before any request, every error naming its key.

use std::collections::BTreeMap;
use std::time::Duration;

use kazi_sdk::json_path::JsonPath;
use kazi_sdk::prelude::*;
use kazi_sdk::text::truncate;
use regex_lite::{Regex, RegexBuilder};

use crate::status::StatusExpectation;
use crate::url::Url;

const URL_EXAMPLE: &str = "http://127.0.0.1:8080/healthz";
const INTERVAL_EXAMPLE: &str = "1s";

/// The config of the `http` predicate, as a goal writes it: its JSON Schema, the
/// load-time checks and the parsing all come from this type.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "http",
    description = "Sends one request per sample to `url` and checks the answer's status, body, JSON values and latency; every sample must be healthy. No answer at all (connection refused, DNS failure, timeout) is an error, not a failure."
)]
pub struct HttpConfig {
    /// The absolute http:// or https:// address to request, e.g.
    /// "http://127.0.0.1:8080/healthz". The predicate may reach this host and port and
    /// nothing else; redirects are not followed.
    #[schemars(example = URL_EXAMPLE)]
    pub url: String,
    /// The request method: GET (the default), HEAD, POST, PUT, PATCH, DELETE or
    /// OPTIONS.
    pub method: Option<String>,
    /// Request headers, name to value, e.g. { Authorization = "Bearer …" }. Host,
    /// Content-Length, Connection, Transfer-Encoding and other hop-by-hop headers cannot
    /// be set.
    pub headers: Option<BTreeMap<String, String>>,
    /// The request body, sent as is with its Content-Length; set Content-Type under
    /// `headers`.
    pub body: Option<String>,
    /// The accepted status: a code (200), a class ("2xx"), or a list of them ([200,
    /// 204]). Default: any 2xx.
    #[serde(default)]
    #[schemars(schema_with = "status_schema")]
    pub expect_status: Option<Value>,
    /// The body must contain this text (or equal it, or match it as a regex; see
    /// `body_match`). Only the first 1 MiB of the body is read.
    pub expect_body: Option<String>,
    /// How `expect_body` is compared: "contains" (default), "exact" (the whole body,
    /// byte for byte), or "regex" (Rust regex syntax with ASCII-only classes, matched
    /// anywhere in the body; `(?i)` ignores case, `(?m)` makes ^ and $ match at line
    /// breaks).
    pub body_match: Option<BodyMatch>,
    /// The body is JSON, and each key is a path into it ("$.status", "status",
    /// "$.items[0].name", "items[-1]", "$[\"dotted.key\"]", "$") whose value must
    /// equal the given value (numbers compare by value).
    pub expect_json: Option<BTreeMap<String, Value>>,
    /// Each sample must be answered completely (headers and body) within this many
    /// milliseconds.
    #[schemars(range(min = 1))]
    pub max_latency_ms: Option<u64>,
    /// How many consecutive healthy answers are required (default 1, at most 100). The
    /// probe stops at the first unhealthy one. (samples - 1) × interval may total at
    /// most 5 minutes, and the whole evaluation must fit in the predicate's `timeout`
    /// (60 s by default).
    #[schemars(range(min = 1, max = 100))]
    pub samples: Option<u64>,
    /// The pause between two samples, e.g. "500ms", "1s", "1m" (default "1s", at most
    /// "60s").
    #[schemars(example = INTERVAL_EXAMPLE)]
    pub interval: Option<String>,
    /// Per request: how long to wait for the connection, for the first byte of the
    /// answer, and between bytes of the answer, in milliseconds (default 10000, at most
    /// 300000).
    #[schemars(range(min = 1, max = 300_000))]
    pub timeout_ms: Option<u64>,
}

/// How `expect_body` is compared with the body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BodyMatch {
    #[default]
    Contains,
    Exact,
    Regex,
}

/// The schema of `expect_status`: a code, a class, or a non-empty list of them.
fn status_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["integer", "string", "array"],
        "minimum": 100,
        "maximum": 599,
        "minItems": 1,
        "items": {"type": ["integer", "string"], "minimum": 100, "maximum": 599}
    })
}

/// The methods a probe may use.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Headers `wasi:http` refuses from a guest (the host sets them, or they are hop-by-hop),
/// plus `content-length`, which kazi sets from `body`.
pub const FORBIDDEN_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "http2-settings",
    "content-length",
];

/// Default per-request timeout (connect, first byte, between bytes).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);
/// The longest `timeout_ms`.
pub const MAX_TIMEOUT_MS: u64 = 300_000;
/// Default pause between samples.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The most samples one evaluation takes.
pub const MAX_SAMPLES: u64 = 100;
/// The longest pause between two samples.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// The longest total pause, `(samples - 1) * interval`.
pub const MAX_SAMPLING: Duration = Duration::from_secs(300);
/// The largest regex program `body_match = "regex"` may compile (bounds guest memory).
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl Method {
    /// The method as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    fn parse(text: &str) -> Option<Method> {
        Some(match text.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => return None,
        })
    }
}

/// How `expect_body` is compared with the response body.
#[derive(Debug, Clone)]
pub enum BodyExpectation {
    /// The body contains this text.
    Contains(String),
    /// The body is exactly this text.
    Exact(String),
    /// The regex matches somewhere in the body.
    Regex(Regex),
}

/// A checked config.
#[derive(Debug, Clone)]
pub struct Spec {
    pub url: Url,
    pub method: Method,
    /// Request headers, sorted by name.
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub expect_status: StatusExpectation,
    pub expect_body: Option<BodyExpectation>,
    /// Path → expected value, sorted by path.
    pub expect_json: Vec<(JsonPath, Value)>,
    pub max_latency: Option<Duration>,
    /// Consecutive healthy answers required (at least 1).
    pub samples: u32,
    /// Pause between two samples.
    pub interval: Duration,
    /// Connect, first-byte and between-bytes timeout of each request.
    pub timeout: Duration,
}

impl Spec {
    /// A spec probing `url` with every default; for tests.
    pub fn new(url: Url) -> Spec {
        Spec {
            url,
            method: Method::Get,
            headers: Vec::new(),
            body: None,
            expect_status: StatusExpectation::default(),
            expect_body: None,
            expect_json: Vec::new(),
            max_latency: None,
            samples: 1,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Check a config and turn it into what the evaluation runs: every problem, each
    /// at its key. The component's `validate` reports these at load.
    pub fn build(config: &HttpConfig) -> std::result::Result<Spec, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let url = match Url::parse(&config.url) {
            Ok(url) => Some(url),
            Err(why) => {
                errors.push(located(&["url"], &why));
                None
            }
        };
        let mut spec = Spec::new(url.clone().unwrap_or_else(placeholder_url));
        if let Some(m) = &config.method {
            match Method::parse(m) {
                Some(method) => spec.method = method,
                None => {
                    let upper = m.to_ascii_uppercase();
                    let mut e = ConfigError::at(
                        "method",
                        format!("must be one of {}, found {}", METHODS.join(", "), quote(m)),
                    );
                    if let Some(close) = text::did_you_mean(&upper, METHODS.iter().copied()) {
                        e = e.with_hint(format!("did you mean \"{close}\"?"));
                    }
                    errors.push(e);
                }
            }
        }
        if let Some(h) = &config.headers {
            match headers(h) {
                Ok(list) => spec.headers = list,
                Err(e) => errors.extend(e),
            }
        }
        spec.body = config.body.clone();
        if let Some(s) = &config.expect_status {
            match StatusExpectation::parse(s) {
                Ok(status) => spec.expect_status = status,
                Err(why) => errors.push(located(&["expect_status"], &why)),
            }
        }
        match body_expectation(config) {
            Ok(body) => spec.expect_body = body,
            Err(e) => errors.push(e),
        }
        if let Some(j) = &config.expect_json {
            match expect_json(j) {
                Ok(list) => spec.expect_json = list,
                Err(e) => errors.extend(e),
            }
        }
        if let Some(ms) = config.max_latency_ms {
            spec.max_latency = Some(Duration::from_millis(ms));
        }
        if let Some(n) = config.samples {
            if n > MAX_SAMPLES || n == 0 {
                errors.push(ConfigError::at(
                    "samples",
                    format!("must be from 1 to {MAX_SAMPLES}, found {n}"),
                ));
            } else {
                spec.samples = n as u32;
            }
        }
        if let Some(text) = &config.interval {
            match parse_duration(text) {
                Ok(d) if d > MAX_INTERVAL => errors.push(ConfigError::at(
                    "interval",
                    format!("must be at most 60s, found {}", quote(text)),
                )),
                Ok(d) => spec.interval = d,
                Err(why) => errors.push(located(&["interval"], &why)),
            }
        }
        let sampling = spec.interval * (spec.samples.max(1) - 1);
        if sampling > MAX_SAMPLING {
            errors.push(
                ConfigError::at(
                    "samples",
                    format!(
                        "× `interval` waits {} s in all, more than the {} s allowed",
                        sampling.as_secs(),
                        MAX_SAMPLING.as_secs()
                    ),
                )
                .with_hint("take fewer samples or shorten `interval`"),
            );
        }
        if let Some(ms) = config.timeout_ms {
            if ms > MAX_TIMEOUT_MS || ms == 0 {
                errors.push(ConfigError::at(
                    "timeout_ms",
                    format!("must be from 1 to {MAX_TIMEOUT_MS}, found {ms}"),
                ));
            } else {
                spec.timeout = Duration::from_millis(ms);
            }
        }
        match url {
            Some(_) if errors.is_empty() => Ok(spec),
            _ => Err(errors),
        }
    }

    /// Read, check and build a config given as JSON (for tests): the first problem as
    /// an error.
    #[cfg(test)]
    pub fn parse(config: &Config) -> Result<Spec> {
        let value = config.value().clone();
        let problems = check_config::<crate::Http, HttpConfig>(&value);
        if let Some(e) = problems.into_iter().next() {
            return Err(e.into());
        }
        let config = HttpConfig::from_value(value)?;
        Spec::build(&config).map_err(|e| e.into_iter().next().expect("an error").into())
    }
}

/// Stands in for a `url` that did not parse while the rest is checked.
fn placeholder_url() -> Url {
    Url::parse("http://127.0.0.1/").expect("a valid URL")
}

/// A message from a helper (`…; hint: …`) as an error at `path`.
fn located(path: &[&str], text: &str) -> ConfigError {
    match text.split_once("; hint: ") {
        Some((message, hint)) => ConfigError::at_path(path, message).with_hint(hint),
        None => ConfigError::at_path(path, text),
    }
}

fn quote(text: &str) -> String {
    truncate(&format!("{text:?}"), 60).into_owned()
}

fn headers(
    map: &BTreeMap<String, String>,
) -> std::result::Result<Vec<(String, String)>, Vec<ConfigError>> {
    let mut out = Vec::with_capacity(map.len());
    let mut errors = Vec::new();
    for (name, value) in map {
        let at = |message: String| ConfigError::at_path(&["headers", name], message);
        let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(is_token) {
            errors.push(at("is not a valid header name".into()));
            continue;
        }
        if FORBIDDEN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            let why = if name.eq_ignore_ascii_case("content-length") {
                "kazi sets it from `body`"
            } else if name.eq_ignore_ascii_case("host") {
                "it always comes from `url`"
            } else {
                "the sandbox's HTTP client manages it"
            };
            errors.push(at(format!("cannot be set: {why}")));
            continue;
        }
        if value.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
            errors.push(at("must be one line (no line breaks)".into()));
            continue;
        }
        out.push((name.clone(), value.clone()));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn body_expectation(
    config: &HttpConfig,
) -> std::result::Result<Option<BodyExpectation>, ConfigError> {
    let Some(text) = &config.expect_body else {
        return match config.body_match {
            Some(_) => Err(ConfigError::at(
                "body_match",
                "says how to compare `expect_body`, which is not set",
            )
            .with_hint("add `expect_body` or remove `body_match`")),
            None => Ok(None),
        };
    };
    Ok(Some(match config.body_match.unwrap_or_default() {
        BodyMatch::Contains => BodyExpectation::Contains(text.clone()),
        BodyMatch::Exact => BodyExpectation::Exact(text.clone()),
        BodyMatch::Regex => BodyExpectation::Regex(
            RegexBuilder::new(text)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    let detail = e
                        .to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    ConfigError::at(
                        "expect_body",
                        format!(
                            "is not a valid regex (body_match = \"regex\"): {}",
                            truncate(&detail, 300)
                        ),
                    )
                })?,
        ),
    }))
}

fn expect_json(
    map: &BTreeMap<String, Value>,
) -> std::result::Result<Vec<(JsonPath, Value)>, Vec<ConfigError>> {
    if map.is_empty() {
        return Err(vec![ConfigError::at("expect_json", "is empty").with_hint(
            "add a path and its value, e.g. `expect_json = { \"$.status\" = \"ok\" }`",
        )]);
    }
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (path, expected) in map {
        match JsonPath::parse(path) {
            Ok(p) => out.push((p, expected.clone())),
            Err(why) => errors.push(ConfigError::at_path(
                &["expect_json", path],
                format!("is not a usable path: {why}"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Parse a humane duration: `500ms`, `1s`, `1.5s`, `2m`, `1m30s`, `1h`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let bad =
        || format!("\"{text}\" is not a duration; hint: write e.g. \"500ms\", \"2s\" or \"1m30s\"");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = rest[num_end..].trim_start();
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::try_from_secs_f64(number * seconds).map_err(|_| bad())?;
        rest = rest[unit_end..].trim_start();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Spec> {
        Spec::parse(&Config::new(v))
    }

    /// What kazi reports at load for `config`, rendered.
    fn load_errors(config: Value) -> Vec<String> {
        check_config::<crate::Http, HttpConfig>(&config)
            .iter()
            .map(|e| format!("{}: {}", e.pointer, e.render()))
            .collect()
    }

    #[test]
    fn defaults() {
        let s = parse(json!({"url": "http://127.0.0.1:8080/healthz"})).unwrap();
        assert_eq!(s.method, Method::Get);
        assert!(s.headers.is_empty() && s.body.is_none());
        assert_eq!(s.expect_status, StatusExpectation::default());
        assert!(s.expect_body.is_none() && s.expect_json.is_empty());
        assert_eq!(s.max_latency, None);
        assert_eq!(s.samples, 1);
        assert_eq!(s.interval, Duration::from_secs(1));
        assert_eq!(s.timeout, Duration::from_secs(10));
    }

    #[test]
    fn every_key() {
        let s = parse(json!({
            "url": "https://api.example.com/v1/items",
            "method": "post",
            "headers": {"Authorization": "Bearer x", "Content-Type": "application/json"},
            "body": "{\"a\":1}",
            "expect_status": [200, 201],
            "expect_body": "^\\{",
            "body_match": "regex",
            "expect_json": {"$.items[0].name": "a", "ok": true},
            "max_latency_ms": 250,
            "samples": 3,
            "interval": "500ms",
            "timeout_ms": 2000
        }))
        .unwrap();
        assert_eq!(s.method, Method::Post);
        assert_eq!(s.headers[0], ("Authorization".into(), "Bearer x".into()));
        assert_eq!(s.body.as_deref(), Some("{\"a\":1}"));
        assert!(s.expect_status.allows(201) && !s.expect_status.allows(204));
        assert!(matches!(&s.expect_body, Some(BodyExpectation::Regex(r)) if r.is_match("{}")));
        assert_eq!(s.expect_json.len(), 2);
        assert_eq!(s.max_latency, Some(Duration::from_millis(250)));
        assert_eq!((s.samples, s.interval), (3, Duration::from_millis(500)));
        assert_eq!(s.timeout, Duration::from_secs(2));
    }

    #[test]
    fn body_match_defaults_to_contains() {
        let s = parse(json!({"url": "http://h/", "expect_body": "ok"})).unwrap();
        assert!(matches!(s.expect_body, Some(BodyExpectation::Contains(t)) if t == "ok"));
        let s =
            parse(json!({"url": "http://h/", "expect_body": "ok", "body_match": "exact"})).unwrap();
        assert!(matches!(s.expect_body, Some(BodyExpectation::Exact(t)) if t == "ok"));
    }

    #[test]
    fn every_config_problem_is_a_load_error_at_its_key() {
        let h = "http://h/";
        let mut mismatches = Vec::new();
        for (config, want) in [
            (
                json!({}),
                "/url: `url` is required (The absolute http:// or https:// address to request, e.g. \"http://127.0.0.1:8080/healthz\")",
            ),
            (
                json!({"url": 3}),
                "/url: `url` must be a string, found an integer 3; hint: for example: url = \"http://127.0.0.1:8080/healthz\"",
            ),
            (
                json!({"url": "localhost:8080"}),
                "/url: `url` `localhost:8080` is not an absolute URL; hint: write `http://localhost:8080`",
            ),
            (
                json!({"url": h, "metod": "GET"}),
                "/metod: `metod` is not a known key; hint: did you mean `method`?",
            ),
            (
                json!({"url": h, "method": "FETCH"}),
                "/method: `method` must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, found \"FETCH\"",
            ),
            (
                json!({"url": h, "method": "PSOT"}),
                "/method: `method` must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, found \"PSOT\"; hint: did you mean \"POST\"?",
            ),
            (
                json!({"url": h, "headers": ["a"]}),
                "/headers: `headers` must be a table, found an array [\"a\"]",
            ),
            (
                json!({"url": h, "headers": {"a b": "x"}}),
                "/headers/a b: `headers.\"a b\"` is not a valid header name",
            ),
            (
                json!({"url": h, "headers": {"Host": "x"}}),
                "/headers/Host: `headers.Host` cannot be set: it always comes from `url`",
            ),
            (
                json!({"url": h, "headers": {"Content-Length": "3"}}),
                "/headers/Content-Length: `headers.Content-Length` cannot be set: kazi sets it from `body`",
            ),
            (
                json!({"url": h, "headers": {"Connection": "close"}}),
                "/headers/Connection: `headers.Connection` cannot be set: the sandbox's HTTP client manages it",
            ),
            (
                json!({"url": h, "headers": {"X": 1}}),
                "/headers/X: `headers.X` must be a string, found an integer 1",
            ),
            (
                json!({"url": h, "headers": {"X": "a\nb"}}),
                "/headers/X: `headers.X` must be one line (no line breaks)",
            ),
            (
                json!({"url": h, "body": 1}),
                "/body: `body` must be a string, found an integer 1",
            ),
            (
                json!({"url": h, "expect_status": 999}),
                "/expect_status: `expect_status` must be at most 599, found 999",
            ),
            (
                json!({"url": h, "expect_status": "ok"}),
                "/expect_status: `expect_status` \"ok\" is not a status code; write a number such as 200 or a class such as \"2xx\"",
            ),
            (
                json!({"url": h, "expect_status": []}),
                "/expect_status: `expect_status` must not be empty",
            ),
            (
                json!({"url": h, "body_match": "exact"}),
                "/body_match: `body_match` says how to compare `expect_body`, which is not set; hint: add `expect_body` or remove `body_match`",
            ),
            (
                json!({"url": h, "expect_body": "x", "body_match": "glob"}),
                "/body_match: `body_match` must be one of \"contains\", \"exact\", \"regex\", found \"glob\"",
            ),
            (
                json!({"url": h, "expect_body": "(", "body_match": "regex"}),
                "/expect_body: `expect_body` is not a valid regex (body_match = \"regex\"): found open group without closing ')'",
            ),
            (
                json!({"url": h, "expect_json": []}),
                "/expect_json: `expect_json` must be a table, found an array []",
            ),
            (
                json!({"url": h, "expect_json": {}}),
                "/expect_json: `expect_json` is empty; hint: add a path and its value, e.g. `expect_json = { \"$.status\" = \"ok\" }`",
            ),
            (
                json!({"url": h, "expect_json": {"a..b": 1}}),
                "/expect_json/a..b: `expect_json.\"a..b\"` is not a usable path: bad path `a..b`: empty key; quote unusual keys as `[\"key\"]`",
            ),
            (
                json!({"url": h, "max_latency_ms": 0}),
                "/max_latency_ms: `max_latency_ms` must be at least 1, found 0",
            ),
            (
                json!({"url": h, "samples": 0}),
                "/samples: `samples` must be at least 1, found 0",
            ),
            (
                json!({"url": h, "samples": 101}),
                "/samples: `samples` must be at most 100, found 101",
            ),
            (
                json!({"url": h, "samples": 2.5}),
                "/samples: `samples` must be an integer, found a number 2.5",
            ),
            (
                json!({"url": h, "interval": 5}),
                "/interval: `interval` must be a string, found an integer 5; hint: for example: interval = \"1s\"",
            ),
            (
                json!({"url": h, "interval": "soon"}),
                "/interval: `interval` \"soon\" is not a duration; hint: write e.g. \"500ms\", \"2s\" or \"1m30s\"",
            ),
            (
                json!({"url": h, "interval": "2m"}),
                "/interval: `interval` must be at most 60s, found \"2m\"",
            ),
            (
                json!({"url": h, "samples": 100, "interval": "5s"}),
                "/samples: `samples` × `interval` waits 495 s in all, more than the 300 s allowed; hint: take fewer samples or shorten `interval`",
            ),
            (
                json!({"url": h, "timeout_ms": 300001}),
                "/timeout_ms: `timeout_ms` must be at most 300000, found 300001",
            ),
            (
                json!({"url": h, "timeout_ms": -1}),
                "/timeout_ms: `timeout_ms` must be at least 1, found -1",
            ),
        ] {
            let got = load_errors(config.clone());
            if got != [want] {
                mismatches.push(format!("{config}\n  want {want}\n  got  {got:?}"));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn sampling_at_the_bound_is_fine() {
        let s = parse(json!({"url": "http://h/", "samples": 6, "interval": "60s"})).unwrap();
        assert_eq!(s.interval * (s.samples - 1), MAX_SAMPLING);
    }

    #[test]
    fn durations() {
        for (text, ms) in [
            ("500ms", 500),
            ("1s", 1000),
            ("1.5s", 1500),
            ("2m", 120_000),
            ("1m30s", 90_000),
            ("1m 30s", 90_000),
            ("0s", 0),
            ("1h", 3_600_000),
            ("10 sec", 10_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in ["", "5", "ms", "1d", "-1s", "1..2s", "s1"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
