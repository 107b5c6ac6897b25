//! The config: parsed and checked before any request, every error naming its key.

use std::time::Duration;

use kazi_sdk::json_path::JsonPath;
use kazi_sdk::prelude::*;
use kazi_sdk::text::truncate;
use regex_lite::{Regex, RegexBuilder};

use crate::status::StatusExpectation;
use crate::url::Url;

/// Every config key, in documentation order.
pub const KEYS: &[&str] = &[
    "url",
    "method",
    "headers",
    "body",
    "expect_status",
    "expect_body",
    "body_match",
    "expect_json",
    "max_latency_ms",
    "samples",
    "interval",
    "timeout_ms",
];

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

    /// Parse and check a config.
    pub fn parse(config: &Config) -> Result<Spec> {
        config.deny_unknown_keys(KEYS)?;
        let url = Url::parse(config.require_str("url")?)
            .map_err(|why| err(format!("config: `url` {why}")))?;
        let mut spec = Spec::new(url);

        if let Some(m) = config.str("method")? {
            spec.method = Method::parse(m).ok_or_else(|| {
                err(format!(
                    "config: `method` must be one of {}, got \"{}\"",
                    METHODS.join(", "),
                    truncate(m, 40)
                ))
            })?;
        }
        if let Some(h) = config.get("headers") {
            spec.headers = headers(h)?;
        }
        spec.body = config.str("body")?.map(str::to_owned);
        if let Some(s) = config.get("expect_status") {
            spec.expect_status = StatusExpectation::parse(s)
                .map_err(|why| err(format!("config: `expect_status` {why}")))?;
        }
        spec.expect_body = body_expectation(config)?;
        if let Some(j) = config.get("expect_json") {
            spec.expect_json = expect_json(j)?;
        }
        if let Some(ms) = positive(config, "max_latency_ms")? {
            spec.max_latency = Some(Duration::from_millis(ms));
        }
        if let Some(n) = positive(config, "samples")? {
            if n > MAX_SAMPLES {
                return Err(err(format!(
                    "config: `samples` must be at most {MAX_SAMPLES}, got {n}"
                )));
            }
            spec.samples = n as u32;
        }
        if let Some(text) = config.str("interval")? {
            let d = parse_duration(text).map_err(|why| err(format!("config: `interval` {why}")))?;
            if d > MAX_INTERVAL {
                return Err(err(format!(
                    "config: `interval` must be at most 60s, got \"{text}\""
                )));
            }
            spec.interval = d;
        }
        let sampling = spec.interval * (spec.samples - 1);
        if sampling > MAX_SAMPLING {
            return Err(err(format!(
                "config: `samples` × `interval` waits {} s in all, more than the {} s allowed; hint: take fewer samples or shorten `interval`",
                sampling.as_secs(),
                MAX_SAMPLING.as_secs()
            )));
        }
        if let Some(ms) = positive(config, "timeout_ms")? {
            if ms > MAX_TIMEOUT_MS {
                return Err(err(format!(
                    "config: `timeout_ms` must be at most {MAX_TIMEOUT_MS}, got {ms}"
                )));
            }
            spec.timeout = Duration::from_millis(ms);
        }
        Ok(spec)
    }
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(msg)
}

fn short(v: &Value) -> String {
    truncate(&v.to_string(), 60).into_owned()
}

/// An optional integer key that must be at least 1.
fn positive(config: &Config, key: &str) -> Result<Option<u64>> {
    match config.get(key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ => Err(err(format!(
                "config: `{key}` must be a whole number of at least 1, got {}",
                short(v)
            ))),
        },
    }
}

fn headers(v: &Value) -> Result<Vec<(String, String)>> {
    let map = v.as_object().ok_or_else(|| {
        err(format!(
            "config: `headers` must be a table of header names to strings, got {}",
            short(v)
        ))
    })?;
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(is_token) {
            return Err(err(format!(
                "config: `headers` has an invalid header name \"{}\"",
                truncate(name, 60)
            )));
        }
        if FORBIDDEN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            let why = if name.eq_ignore_ascii_case("content-length") {
                "kazi sets it from `body`"
            } else if name.eq_ignore_ascii_case("host") {
                "it always comes from `url`"
            } else {
                "the sandbox's HTTP client manages it"
            };
            return Err(err(format!(
                "config: `headers.{name}` cannot be set: {why}"
            )));
        }
        let value = value.as_str().ok_or_else(|| {
            err(format!(
                "config: `headers.{name}` must be a string, got {}",
                short(value)
            ))
        })?;
        if value.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
            return Err(err(format!(
                "config: `headers.{name}` must be one line (no line breaks)"
            )));
        }
        out.push((name.clone(), value.to_owned()));
    }
    Ok(out)
}

fn body_expectation(config: &Config) -> Result<Option<BodyExpectation>> {
    let mode = config.str("body_match")?;
    let Some(text) = config.str("expect_body")? else {
        return match mode {
            Some(_) => Err(err(
                "config: `body_match` says how to compare `expect_body`, which is not set; hint: add `expect_body` or remove `body_match`",
            )),
            None => Ok(None),
        };
    };
    Ok(Some(match mode.unwrap_or("contains") {
        "contains" => BodyExpectation::Contains(text.to_owned()),
        "exact" => BodyExpectation::Exact(text.to_owned()),
        "regex" => BodyExpectation::Regex(
            RegexBuilder::new(text)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    let detail = e.to_string().trim().replace('\n', " ");
                    err(format!(
                        "config: `expect_body` is not a valid regex (body_match = \"regex\"): {}",
                        truncate(&detail, 300)
                    ))
                })?,
        ),
        other => {
            return Err(err(format!(
                "config: `body_match` must be \"contains\", \"exact\" or \"regex\", got \"{}\"",
                truncate(other, 40)
            )));
        }
    }))
}

fn expect_json(v: &Value) -> Result<Vec<(JsonPath, Value)>> {
    let map = v.as_object().ok_or_else(|| {
        err(format!(
            "config: `expect_json` must be a table of JSON paths to expected values, got {}",
            short(v)
        ))
    })?;
    if map.is_empty() {
        return Err(err(
            "config: `expect_json` is empty; hint: add a path and its value, e.g. `expect_json = { \"$.status\" = \"ok\" }`",
        ));
    }
    map.iter()
        .map(|(path, expected)| {
            JsonPath::parse(path)
                .map(|p| (p, expected.clone()))
                .map_err(|why| err(format!("config: `expect_json` has a {why}")))
        })
        .collect()
}

/// Parse a humane duration: `500ms`, `1s`, `1.5s`, `2m`, `1m30s`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("\"{text}\" is not a duration; write e.g. \"500ms\", \"2s\" or \"1m30s\"");
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

    fn error(v: Value) -> String {
        parse(v).unwrap_err().message().to_owned()
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
    fn errors_name_the_key() {
        for (cfg, needle) in [
            (json!({}), "missing required key `url`"),
            (json!({"url": 3}), "`url` must be a string"),
            (
                json!({"url": "localhost:8080"}),
                "config: `url` `localhost:8080` is not an absolute URL",
            ),
            (
                json!({"url": "http://h/", "metod": "GET"}),
                "unknown key `metod`; hint: did you mean `method`?",
            ),
            (
                json!({"url": "http://h/", "method": "FETCH"}),
                "`method` must be one of GET, HEAD",
            ),
            (
                json!({"url": "http://h/", "headers": ["a"]}),
                "`headers` must be a table",
            ),
            (
                json!({"url": "http://h/", "headers": {"a b": "x"}}),
                "invalid header name",
            ),
            (
                json!({"url": "http://h/", "headers": {"Host": "x"}}),
                "`headers.Host` cannot be set: it always comes from `url`",
            ),
            (
                json!({"url": "http://h/", "headers": {"Content-Length": "3"}}),
                "kazi sets it from `body`",
            ),
            (
                json!({"url": "http://h/", "headers": {"Connection": "close"}}),
                "`headers.Connection` cannot be set",
            ),
            (
                json!({"url": "http://h/", "headers": {"X": 1}}),
                "`headers.X` must be a string",
            ),
            (
                json!({"url": "http://h/", "headers": {"X": "a\nb"}}),
                "`headers.X` must be one line",
            ),
            (
                json!({"url": "http://h/", "body": 1}),
                "`body` must be a string",
            ),
            (
                json!({"url": "http://h/", "expect_status": 999}),
                "`expect_status` 999 is not an HTTP status code",
            ),
            (
                json!({"url": "http://h/", "body_match": "exact"}),
                "`body_match` says how to compare `expect_body`",
            ),
            (
                json!({"url": "http://h/", "expect_body": "x", "body_match": "glob"}),
                "`body_match` must be \"contains\"",
            ),
            (
                json!({"url": "http://h/", "expect_body": "(", "body_match": "regex"}),
                "`expect_body` is not a valid regex",
            ),
            (
                json!({"url": "http://h/", "expect_json": []}),
                "`expect_json` must be a table",
            ),
            (
                json!({"url": "http://h/", "expect_json": {}}),
                "`expect_json` is empty",
            ),
            (
                json!({"url": "http://h/", "expect_json": {"a..b": 1}}),
                "`expect_json` has a bad path `a..b`",
            ),
            (
                json!({"url": "http://h/", "max_latency_ms": 0}),
                "`max_latency_ms` must be a whole number of at least 1, got 0",
            ),
            (
                json!({"url": "http://h/", "samples": 0}),
                "`samples` must be a whole number",
            ),
            (
                json!({"url": "http://h/", "samples": 101}),
                "`samples` must be at most 100",
            ),
            (
                json!({"url": "http://h/", "samples": 2.5}),
                "`samples` must be a whole number",
            ),
            (
                json!({"url": "http://h/", "interval": 5}),
                "`interval` must be a string",
            ),
            (
                json!({"url": "http://h/", "interval": "soon"}),
                "`interval` \"soon\" is not a duration",
            ),
            (
                json!({"url": "http://h/", "interval": "2m"}),
                "`interval` must be at most 60s",
            ),
            (
                json!({"url": "http://h/", "samples": 100, "interval": "5s"}),
                "waits 495 s in all",
            ),
            (
                json!({"url": "http://h/", "timeout_ms": 300001}),
                "`timeout_ms` must be at most 300000",
            ),
            (
                json!({"url": "http://h/", "timeout_ms": -1}),
                "`timeout_ms` must be a whole number",
            ),
        ] {
            let msg = error(cfg.clone());
            assert!(msg.contains(needle), "{cfg}: {msg}");
        }
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
