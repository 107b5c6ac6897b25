//! Judging one answer: status, body, JSON values and latency, and the evidence that
//! shows a reader why. Pure: no I/O.

use std::fmt::Write as _;
use std::time::Duration;

use kazi_sdk::json_path::values_equal;
use kazi_sdk::prelude::*;
use kazi_sdk::text::truncate;

use crate::config::{BodyExpectation, Spec};

/// How much of a response body is read and matched; the rest is left unread.
pub const BODY_CAP: usize = 1 << 20;
/// How much of the body the evidence shows.
const BODY_SHOWN: usize = 2048;
/// How many response headers the evidence shows.
const HEADERS_SHOWN: usize = 8;
/// Headers worth showing first, when present.
const INTERESTING_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "location",
    "retry-after",
    "www-authenticate",
];

/// One answer, as the transport read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, values as text (lossy), in arrival order.
    pub headers: Vec<(String, String)>,
    /// At most [`BODY_CAP`] bytes.
    pub body: Vec<u8>,
    /// The body was longer than [`BODY_CAP`] and was cut.
    pub truncated: bool,
    /// From sending the request to the last byte read.
    pub latency: Duration,
}

impl Response {
    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One way an answer is not what the config expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The status is not accepted; `hint` explains a redirect.
    Status {
        expected: String,
        hint: Option<String>,
    },
    /// The body does not satisfy `expect_body`.
    Body {
        what: String,
        detail: Option<String>,
    },
    /// A value under `expect_json` differs, is missing, or the body is not JSON.
    Json { what: String },
    /// The answer took longer than `max_latency_ms`.
    Latency { max: Duration },
}

/// Everything wrong with `response`; empty when it is healthy. A wrong status is the
/// only problem reported: the body of an error page is not worth matching.
pub fn check(spec: &Spec, response: &Response) -> Vec<Problem> {
    if !spec.expect_status.allows(response.status) {
        let hint = (response.status / 100 == 3 && !spec.expect_status.expects_redirect())
            .then(|| {
                let to = response
                    .header("location")
                    .map(|l| format!(" to {}", truncate(l, 200)))
                    .unwrap_or_default();
                format!(
                    "the server redirects{to}; kazi does not follow redirects: point `url` at the final address, or expect {}",
                    response.status
                )
            });
        return vec![Problem::Status {
            expected: spec.expect_status.to_string(),
            hint,
        }];
    }
    let mut problems = Vec::new();
    let text = if spec.expect_body.is_some() || !spec.expect_json.is_empty() {
        response.body_text()
    } else {
        String::new()
    };
    if let Some(expected) = &spec.expect_body
        && let Some(p) = check_body(expected, &text, response.truncated)
    {
        problems.push(p);
    }
    if !spec.expect_json.is_empty() {
        match serde_json::from_str::<Value>(&text) {
            Err(e) => problems.push(Problem::Json {
                what: if response.truncated {
                    format!("the body is not JSON ({e}; it was cut at 1 MiB)")
                } else if text.trim().is_empty() {
                    "the body is empty, not JSON".into()
                } else {
                    format!("the body is not JSON ({e})")
                },
            }),
            Ok(doc) => {
                for (path, expected) in &spec.expect_json {
                    let what = match path.lookup(&doc) {
                        None => format!("`{path}` is missing, expected {}", shown(expected)),
                        Some(got) if !values_equal(got, expected) => {
                            format!("`{path}` is {}, expected {}", shown(got), shown(expected))
                        }
                        Some(_) => continue,
                    };
                    problems.push(Problem::Json { what });
                }
            }
        }
    }
    if let Some(max) = spec.max_latency
        && response.latency > max
    {
        problems.push(Problem::Latency { max });
    }
    problems
}

fn check_body(expected: &BodyExpectation, text: &str, truncated: bool) -> Option<Problem> {
    let cut = truncated.then(|| "only the first 1 MiB of the body was read and matched".to_owned());
    match expected {
        BodyExpectation::Contains(needle) => {
            (!text.contains(needle.as_str())).then(|| Problem::Body {
                what: format!("the body does not contain {}", quoted(needle)),
                detail: cut,
            })
        }
        BodyExpectation::Regex(re) => (!re.is_match(text)).then(|| Problem::Body {
            what: format!("the body does not match /{}/", truncate(re.as_str(), 80)),
            detail: cut,
        }),
        BodyExpectation::Exact(want) => {
            if text == want {
                return None;
            }
            let at = text
                .char_indices()
                .zip(want.chars())
                .find(|((_, a), b)| a != b)
                .map_or(text.len().min(want.len()), |((i, _), _)| i);
            let detail = if text.trim_end() == want.trim_end() {
                "the two differ only in trailing whitespace (a final newline?)".to_owned()
            } else {
                format!(
                    "the body ({} bytes{}) and expect_body ({} bytes) first differ at byte {at}: the body has {}, expect_body has {}",
                    text.len(),
                    if truncated { ", cut at 1 MiB" } else { "" },
                    want.len(),
                    quoted(&text[at..]),
                    quoted(&want[floor(want, at)..]),
                )
            };
            Some(Problem::Body {
                what: "the body is not exactly expect_body".into(),
                detail: Some(detail),
            })
        }
    }
}

fn floor(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Text in quotes, cut to a readable length; `nothing more` when empty.
fn quoted(s: &str) -> String {
    if s.is_empty() {
        return "nothing more".into();
    }
    Value::String(truncate(s, 60).into_owned()).to_string()
}

/// A JSON value, cut to a readable length.
fn shown(v: &Value) -> String {
    truncate(&v.to_string(), 80).into_owned()
}

/// Milliseconds, for people.
pub fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{} ms", ms.round() as u64)
    }
}

/// The one-line reason a healthy-looking status is not good enough, for the summary:
/// what follows "GET http://… answered 200".
pub fn headline(problems: &[Problem], response: &Response) -> String {
    let Some(first) = problems.first() else {
        return String::new();
    };
    let more = match problems.len() {
        1 => String::new(),
        2 => " (and 1 more problem)".into(),
        n => format!(" (and {} more problems)", n - 1),
    };
    let main = match first {
        Problem::Status { expected, .. } => format!(", expected {expected}"),
        Problem::Body { what, .. } | Problem::Json { what } => format!(" but {what}"),
        Problem::Latency { max } => format!(
            " in {}, over max_latency_ms {}",
            millis(response.latency),
            max.as_millis()
        ),
    };
    format!("{main}{more}")
}

/// The details of an unhealthy answer: every problem, then the answer itself (status
/// line, a few headers, the head of the body).
pub fn details(problems: &[Problem], response: &Response) -> String {
    let mut out = String::new();
    for p in problems {
        let (line, extra) = match p {
            Problem::Status { expected, hint } => (
                format!("status {}, expected {expected}", response.status),
                hint.as_ref().map(|h| format!("hint: {h}")),
            ),
            Problem::Body { what, detail } => (what.clone(), detail.clone()),
            Problem::Json { what } => (what.clone(), None),
            Problem::Latency { max } => (
                format!(
                    "answered in {}, over max_latency_ms {}",
                    millis(response.latency),
                    max.as_millis()
                ),
                None,
            ),
        };
        let _ = writeln!(out, "- {line}");
        if let Some(extra) = extra {
            let _ = writeln!(out, "  {extra}");
        }
    }
    out.push('\n');
    out.push_str(&answer(response));
    out
}

/// The answer as evidence: status line, a few headers, the head of the body.
pub fn answer(response: &Response) -> String {
    let mut out = String::new();
    let reason = reason_phrase(response.status)
        .map(|r| format!(" {r}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "HTTP {}{reason} ({})",
        response.status,
        millis(response.latency)
    );
    let mut order: Vec<&(String, String)> = INTERESTING_HEADERS
        .iter()
        .filter_map(|name| response.headers.iter().find(|(n, _)| n == name))
        .collect();
    for h in &response.headers {
        if !order.iter().any(|o| o.0 == h.0) {
            order.push(h);
        }
    }
    for (name, value) in order.iter().take(HEADERS_SHOWN) {
        let _ = writeln!(out, "{name}: {}", truncate(value, 200));
    }
    if order.len() > HEADERS_SHOWN {
        let _ = writeln!(out, "[… {} more headers]", order.len() - HEADERS_SHOWN);
    }
    out.push('\n');
    out.push_str(&body_head(response));
    out
}

fn body_head(response: &Response) -> String {
    let body = &response.body;
    if body.is_empty() {
        return "[empty body]\n".into();
    }
    if body.contains(&0) {
        return format!(
            "[binary body, {}{} bytes]\n",
            if response.truncated { "more than " } else { "" },
            body.len()
        );
    }
    let text = response.body_text();
    let mut out = String::new();
    let shown_to = floor(&text, BODY_SHOWN);
    out.push_str(&text[..shown_to]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    if response.truncated {
        let _ = writeln!(
            out,
            "[body longer than 1 MiB; the first {shown_to} bytes are shown, the first 1 MiB was matched]"
        );
    } else if shown_to < text.len() {
        let _ = writeln!(
            out,
            "[the first {shown_to} of {} bytes are shown]",
            body.len()
        );
    }
    out
}

/// The standard reason phrase of common status codes.
pub fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        418 => "I'm a teapot",
        422 => "Unprocessable Content",
        425 => "Too Early",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::Url;

    fn spec(cfg: Value) -> Spec {
        let mut cfg = cfg;
        cfg["url"] = json!("http://127.0.0.1:8080/healthz");
        Spec::parse(&Config::new(cfg)).unwrap()
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
            truncated: false,
            latency: Duration::from_millis(12),
        }
    }

    #[test]
    fn default_expects_any_2xx() {
        let s = Spec::new(Url::parse("http://h/").unwrap());
        assert!(check(&s, &response(204, "")).is_empty());
        let p = check(&s, &response(503, "down"));
        assert_eq!(
            p,
            vec![Problem::Status {
                expected: "2xx".into(),
                hint: None
            }]
        );
        assert_eq!(headline(&p, &response(503, "")), ", expected 2xx");
    }

    #[test]
    fn a_wrong_status_hides_body_problems() {
        let s = spec(json!({"expect_status": 200, "expect_body": "ok", "max_latency_ms": 1}));
        assert_eq!(check(&s, &response(500, "boom")).len(), 1);
    }

    #[test]
    fn redirects_get_a_hint() {
        let s = spec(json!({}));
        let mut r = response(301, "");
        r.headers
            .push(("location".into(), "https://h/healthz".into()));
        let p = check(&s, &r);
        let Problem::Status { hint: Some(h), .. } = &p[0] else {
            panic!("{p:?}")
        };
        assert!(h.contains("redirects to https://h/healthz"), "{h}");
        assert!(h.contains("or expect 301"), "{h}");
        let s = spec(json!({"expect_status": "3xx"}));
        assert!(check(&s, &r).is_empty());
    }

    #[test]
    fn body_contains_exact_and_regex() {
        let contains = spec(json!({"expect_body": "ok"}));
        assert!(check(&contains, &response(200, "all ok\n")).is_empty());
        let p = check(&contains, &response(200, "degraded"));
        assert_eq!(
            headline(&p, &response(200, "")),
            " but the body does not contain \"ok\""
        );

        let exact = spec(json!({"expect_body": "1.0.0", "body_match": "exact"}));
        assert!(check(&exact, &response(200, "1.0.0")).is_empty());
        let p = check(&exact, &response(200, "1.0.0\n"));
        let Problem::Body {
            detail: Some(d), ..
        } = &p[0]
        else {
            panic!("{p:?}")
        };
        assert!(d.contains("only in trailing whitespace"), "{d}");
        let p = check(&exact, &response(200, "1.1.0"));
        let Problem::Body {
            detail: Some(d), ..
        } = &p[0]
        else {
            panic!("{p:?}")
        };
        assert!(d.contains("first differ at byte 2"), "{d}");
        assert!(
            d.contains("the body has \"1.0\", expect_body has \"0.0\""),
            "{d}"
        );
        let p = check(&exact, &response(200, "1.0"));
        let Problem::Body {
            detail: Some(d), ..
        } = &p[0]
        else {
            panic!("{p:?}")
        };
        assert!(d.contains("the body has nothing more"), "{d}");

        let re = spec(json!({"expect_body": "^ok( |$)", "body_match": "regex"}));
        assert!(check(&re, &response(200, "ok")).is_empty());
        let p = check(&re, &response(200, "not ok"));
        assert_eq!(
            headline(&p, &response(200, "")),
            " but the body does not match /^ok( |$)/"
        );
    }

    #[test]
    fn exact_mismatch_inside_a_multibyte_character() {
        let exact = spec(json!({"expect_body": "é", "body_match": "exact"}));
        assert_eq!(check(&exact, &response(200, "è")).len(), 1);
    }

    #[test]
    fn truncated_bodies_say_so() {
        let s = spec(json!({"expect_body": "needle"}));
        let mut r = response(200, "hay");
        r.truncated = true;
        let p = check(&s, &r);
        let Problem::Body {
            detail: Some(d), ..
        } = &p[0]
        else {
            panic!("{p:?}")
        };
        assert!(d.contains("first 1 MiB"), "{d}");
    }

    #[test]
    fn json_values() {
        let s =
            spec(json!({"expect_json": {"$.status": "ok", "$.items[0].name": "a", "count": 2}}));
        let body = r#"{"status":"ok","items":[{"name":"a"}],"count":2.0}"#;
        assert!(check(&s, &response(200, body)).is_empty());
        let p = check(&s, &response(200, r#"{"status":"down","items":[]}"#));
        assert_eq!(
            p,
            vec![
                Problem::Json {
                    what: "`$.items[0].name` is missing, expected \"a\"".into()
                },
                Problem::Json {
                    what: "`$.status` is \"down\", expected \"ok\"".into()
                },
                Problem::Json {
                    what: "`count` is missing, expected 2".into()
                },
            ]
        );
        assert_eq!(
            headline(&p, &response(200, "")),
            " but `$.items[0].name` is missing, expected \"a\" (and 2 more problems)"
        );
        let p = check(&s, &response(200, "<html>"));
        assert!(
            matches!(&p[0], Problem::Json { what } if what.starts_with("the body is not JSON ("))
        );
        let p = check(&s, &response(200, ""));
        assert!(matches!(&p[0], Problem::Json { what } if what == "the body is empty, not JSON"));
    }

    #[test]
    fn latency_over_the_max() {
        let s = spec(json!({"max_latency_ms": 10}));
        let p = check(&s, &response(200, ""));
        assert_eq!(
            p,
            vec![Problem::Latency {
                max: Duration::from_millis(10)
            }]
        );
        assert_eq!(
            headline(&p, &response(200, "")),
            " in 12 ms, over max_latency_ms 10"
        );
        let s = spec(json!({"max_latency_ms": 12}));
        assert!(check(&s, &response(200, "")).is_empty());
    }

    #[test]
    fn details_show_problems_status_headers_and_body_head() {
        let s = spec(json!({"expect_status": 200}));
        let r = response(503, "maintenance");
        let d = details(&check(&s, &r), &r);
        assert_eq!(
            d,
            "- status 503, expected 200\n\nHTTP 503 Service Unavailable (12 ms)\ncontent-type: text/plain\n\nmaintenance\n"
        );
    }

    #[test]
    fn evidence_is_bounded() {
        let mut r = response(200, &"x".repeat(10_000));
        for i in 0..20 {
            r.headers.push((format!("x-h{i}"), "v".repeat(500)));
        }
        r.headers.push(("location".into(), "/elsewhere".into()));
        let a = answer(&r);
        assert!(a.len() < 4096, "{}", a.len());
        assert!(
            a.contains("content-type: text/plain\nlocation: /elsewhere\n"),
            "{a}"
        );
        assert!(a.contains("[… 14 more headers]"), "{a}");
        assert!(
            a.contains("[the first 2048 of 10000 bytes are shown]"),
            "{a}"
        );
        r.truncated = true;
        assert!(answer(&r).contains("body longer than 1 MiB"));
        r.body = vec![0, 1, 2];
        assert!(answer(&r).contains("[binary body, more than 3 bytes]"));
        r.body.clear();
        assert!(answer(&r).contains("[empty body]"));
    }

    #[test]
    fn millis_for_people() {
        assert_eq!(millis(Duration::from_micros(2500)), "2.5 ms");
        assert_eq!(millis(Duration::from_millis(812)), "812 ms");
    }
}
