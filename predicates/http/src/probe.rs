//! The probe: take `samples` answers `interval` apart, stop at the first unhealthy
//! one, and turn what was seen into a verdict. The network is behind [`Transport`],
//! so this logic is tested without one.

use std::fmt::Write as _;
use std::time::Duration;

use kazi_sdk::prelude::*;

use crate::check::{self, Response, millis};
use crate::config::Spec;
use crate::net::NetError;

/// Sends requests and waits; the real one is `wasi:http` and the monotonic clock.
pub trait Transport {
    /// Send the request `spec` describes and read the answer (body capped).
    fn send(&mut self, spec: &Spec) -> Result<Response, NetError>;
    /// Wait this long.
    fn pause(&mut self, duration: Duration);
}

/// What is kept of a healthy answer: up to 100 bodies of 1 MiB would not fit the
/// sandbox's memory, and only the last answer is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    status: u16,
    latency: Duration,
}

impl From<&Response> for Sample {
    fn from(r: &Response) -> Self {
        Sample {
            status: r.status,
            latency: r.latency,
        }
    }
}

/// Probe `spec` through `transport` and judge it.
pub fn probe(spec: &Spec, transport: &mut impl Transport) -> Verdict {
    let what = format!("{} {}", spec.method.as_str(), spec.url);
    let n = spec.samples;
    let mut healthy: Vec<Sample> = Vec::new();
    let mut last: Option<Response> = None;
    for i in 1..=n {
        if i > 1 {
            transport.pause(spec.interval);
        }
        let at = if n > 1 {
            format!(" at sample {i} of {n}")
        } else {
            String::new()
        };
        let response = match transport.send(spec) {
            Ok(r) => r,
            Err(e) => return no_answer(spec, &what, &at, &e, &healthy),
        };
        let problems = check::check(spec, &response);
        if problems.is_empty() {
            healthy.push(Sample::from(&response));
            last = Some(response);
            continue;
        }
        let summary = format!(
            "{what} answered {}{at}{}",
            response.status,
            check::headline(&problems, &response)
        );
        let mut details = history(&healthy);
        details.push_str(&check::details(&problems, &response));
        let latencies = latencies(&healthy, Some(Sample::from(&response)));
        return with_metrics(
            Verdict::fail(summary).with_details(details),
            Some(response.status),
            &latencies,
            healthy.len(),
        );
    }
    let last = last.expect("at least one sample was taken");
    let latencies = latencies(&healthy, None);
    let summary = if n == 1 {
        format!(
            "{what} answered {} in {}",
            last.status,
            millis(last.latency)
        )
    } else {
        let apart = if spec.interval.is_zero() {
            String::new()
        } else {
            format!(", {} apart", humane(spec.interval))
        };
        format!(
            "{what} answered {n} samples in a row{apart} (median {})",
            millis(median(&latencies))
        )
    };
    let mut details = String::new();
    if n > 1 {
        let _ = writeln!(details, "{}\n", sample_list(&healthy));
    }
    details.push_str(&check::answer(&last));
    with_metrics(
        Verdict::pass(summary).with_details(details),
        Some(last.status),
        &latencies,
        healthy.len(),
    )
}

/// The verdict when a request got no answer: `error` when no sample had answered yet
/// (the check could not be made), `fail` when earlier samples had (the service stopped
/// answering), and `fail` when a slow answer ran past `timeout_ms` while
/// `max_latency_ms` is no more than that.
fn no_answer(spec: &Spec, what: &str, at: &str, e: &NetError, healthy: &[Sample]) -> Verdict {
    let cause = e.describe(spec.timeout);
    let mut details = history(healthy);
    let latencies = latencies(healthy, None);
    let last_status = healthy.last().map(|r| r.status);
    if let Some(max) = spec.max_latency
        && e.is_slow_answer()
        && max <= spec.timeout
    {
        let _ = writeln!(details, "{what}{at}: {cause}");
        let summary = format!(
            "{what} did not answer{at} within {} ms (timeout_ms), over max_latency_ms {}",
            spec.timeout.as_millis(),
            max.as_millis()
        );
        return with_metrics(
            Verdict::fail(summary).with_details(details),
            last_status,
            &latencies,
            healthy.len(),
        );
    }
    let error = healthy.is_empty() || *e == NetError::Denied;
    if !error {
        let _ = writeln!(details, "{what}{at}: {cause}");
    }
    if let Some(hint) = e.hint(&spec.url.target()) {
        let _ = writeln!(details, "hint: {hint}");
    }
    if error {
        return Verdict::error(format!("{what}: {cause}")).with_details(details);
    }
    with_metrics(
        Verdict::fail(format!("{what} stopped answering{at}: {cause}")).with_details(details),
        last_status,
        &latencies,
        healthy.len(),
    )
}

/// What the healthy samples before a bad one looked like; empty when there were none.
fn history(healthy: &[Sample]) -> String {
    match healthy.len() {
        0 => String::new(),
        1 => format!("the first sample was healthy: {}\n\n", sample_list(healthy)),
        k => format!(
            "the first {k} samples were healthy: {}\n\n",
            sample_list(healthy)
        ),
    }
}

/// `200 in 3.1 ms, 200 in 2.9 ms, …`, bounded to the first and last few.
fn sample_list(samples: &[Sample]) -> String {
    let one = |r: &Sample| format!("{} in {}", r.status, millis(r.latency));
    if samples.len() <= 12 {
        return samples.iter().map(one).collect::<Vec<_>>().join(", ");
    }
    let head: Vec<String> = samples[..5].iter().map(one).collect();
    let tail: Vec<String> = samples[samples.len() - 5..].iter().map(one).collect();
    format!(
        "{}, [… {} more …], {}",
        head.join(", "),
        samples.len() - 10,
        tail.join(", ")
    )
}

fn latencies(healthy: &[Sample], failed: Option<Sample>) -> Vec<Duration> {
    healthy.iter().chain(&failed).map(|r| r.latency).collect()
}

/// The median of `values` (the mean of the middle two for an even count); zero when empty.
pub fn median(values: &[Duration]) -> Duration {
    let mut v = values.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

fn with_metrics(
    verdict: Verdict,
    status: Option<u16>,
    latencies: &[Duration],
    samples_ok: usize,
) -> Verdict {
    let mut v = verdict;
    if let Some(s) = status {
        v = v.with_metric("status", f64::from(s));
    }
    if !latencies.is_empty() {
        // Whole microseconds: more digits are noise.
        let ms = median(latencies).as_micros() as f64 / 1000.0;
        v = v.with_metric("latency_ms", ms);
    }
    v.with_metric("samples_ok", samples_ok as f64)
}

/// A pause for people: `500ms`, `1s`, `1.5s`.
fn humane(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted transport: one outcome per request, and a log of what happened.
    struct Script {
        outcomes: Vec<Result<Response, NetError>>,
        log: Vec<String>,
    }

    impl Script {
        fn new(outcomes: Vec<Result<Response, NetError>>) -> Self {
            Self {
                outcomes,
                log: Vec::new(),
            }
        }
    }

    impl Transport for Script {
        fn send(&mut self, spec: &Spec) -> Result<Response, NetError> {
            self.log
                .push(format!("{} {}", spec.method.as_str(), spec.url));
            assert!(!self.outcomes.is_empty(), "more requests than scripted");
            self.outcomes.remove(0)
        }
        fn pause(&mut self, d: Duration) {
            self.log.push(format!("pause {}", d.as_millis()));
        }
    }

    fn ok(status: u16, ms: u64, body: &str) -> Result<Response, NetError> {
        Ok(Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            truncated: false,
            latency: Duration::from_millis(ms),
        })
    }

    fn spec(extra: Value) -> Spec {
        let mut cfg = json!({"url": "http://127.0.0.1:8080/healthz"});
        for (k, v) in extra.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        Spec::parse(&Config::new(cfg)).unwrap()
    }

    fn metric(v: &Verdict, name: &str) -> Option<f64> {
        v.metrics.iter().find(|(n, _)| n == name).map(|(_, x)| *x)
    }

    #[test]
    fn one_healthy_answer_passes() {
        let mut t = Script::new(vec![ok(200, 12, "{}")]);
        let v = probe(&spec(json!({})), &mut t);
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(
            v.summary,
            "GET http://127.0.0.1:8080/healthz answered 200 in 12 ms"
        );
        assert!(
            v.details.starts_with("HTTP 200 OK (12 ms)\n"),
            "{}",
            v.details
        );
        assert_eq!(metric(&v, "status"), Some(200.0));
        assert_eq!(metric(&v, "latency_ms"), Some(12.0));
        assert_eq!(metric(&v, "samples_ok"), Some(1.0));
        assert_eq!(t.log, vec!["GET http://127.0.0.1:8080/healthz"]);
    }

    #[test]
    fn wrong_status_fails_with_evidence() {
        let mut t = Script::new(vec![ok(503, 4, "{\"status\":\"down\"}")]);
        let v = probe(&spec(json!({"expect_status": 200})), &mut t);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "GET http://127.0.0.1:8080/healthz answered 503, expected 200"
        );
        assert!(
            v.details.contains("HTTP 503 Service Unavailable"),
            "{}",
            v.details
        );
        assert!(v.details.contains("{\"status\":\"down\"}"), "{}", v.details);
        assert!(v.diagnostics.is_empty());
        assert_eq!(metric(&v, "status"), Some(503.0));
        assert_eq!(metric(&v, "samples_ok"), Some(0.0));
    }

    #[test]
    fn samples_pause_between_and_report_the_median() {
        let mut t = Script::new(vec![ok(200, 10, ""), ok(200, 30, ""), ok(200, 20, "")]);
        let v = probe(&spec(json!({"samples": 3, "interval": "250ms"})), &mut t);
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(
            v.summary,
            "GET http://127.0.0.1:8080/healthz answered 3 samples in a row, 250ms apart (median 20 ms)"
        );
        assert!(
            v.details
                .starts_with("200 in 10 ms, 200 in 30 ms, 200 in 20 ms\n")
        );
        assert_eq!(metric(&v, "latency_ms"), Some(20.0));
        assert_eq!(metric(&v, "samples_ok"), Some(3.0));
        let pauses = t.log.iter().filter(|l| l.starts_with("pause")).count();
        assert_eq!(pauses, 2);
        assert_eq!(t.log[1], "pause 250");
    }

    #[test]
    fn samples_without_a_pause() {
        let mut t = Script::new(vec![ok(200, 1, ""), ok(200, 3, "")]);
        let v = probe(&spec(json!({"samples": 2, "interval": "0ms"})), &mut t);
        assert_eq!(
            v.summary,
            "GET http://127.0.0.1:8080/healthz answered 2 samples in a row (median 2.0 ms)"
        );
        assert_eq!(t.log[1], "pause 0");
    }

    #[test]
    fn the_first_unhealthy_sample_ends_the_probe() {
        let mut t = Script::new(vec![ok(200, 10, ""), ok(500, 40, "boom")]);
        let v = probe(&spec(json!({"samples": 5})), &mut t);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "GET http://127.0.0.1:8080/healthz answered 500 at sample 2 of 5, expected 2xx"
        );
        assert!(
            v.details
                .starts_with("the first sample was healthy: 200 in 10 ms\n\n- status 500"),
            "{}",
            v.details
        );
        assert_eq!(metric(&v, "samples_ok"), Some(1.0));
        assert_eq!(metric(&v, "latency_ms"), Some(25.0));
        assert!(t.outcomes.is_empty());
    }

    #[test]
    fn latency_over_the_max_fails() {
        let mut t = Script::new(vec![ok(200, 5, ""), ok(200, 812, "")]);
        let v = probe(&spec(json!({"samples": 2, "max_latency_ms": 500})), &mut t);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "GET http://127.0.0.1:8080/healthz answered 200 at sample 2 of 2 in 812 ms, over max_latency_ms 500"
        );
    }

    #[test]
    fn json_mismatch_fails() {
        let mut t = Script::new(vec![ok(200, 5, r#"{"status":"degraded"}"#)]);
        let v = probe(&spec(json!({"expect_json": {"$.status": "ok"}})), &mut t);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "GET http://127.0.0.1:8080/healthz answered 200 but `$.status` is \"degraded\", expected \"ok\""
        );
    }

    #[test]
    fn no_connection_is_an_error() {
        let mut t = Script::new(vec![Err(NetError::Refused)]);
        let v = probe(&spec(json!({"samples": 3})), &mut t);
        assert_eq!(v.outcome, Outcome::Error);
        assert_eq!(
            v.summary,
            "GET http://127.0.0.1:8080/healthz: connection refused"
        );
        assert!(
            v.details
                .starts_with("hint: nothing is listening on 127.0.0.1:8080: start the service"),
            "{}",
            v.details
        );
        assert!(v.metrics.is_empty());
    }

    #[test]
    fn a_denied_request_is_an_error() {
        let mut t = Script::new(vec![Err(NetError::Denied)]);
        let v = probe(&spec(json!({})), &mut t);
        assert_eq!(v.outcome, Outcome::Error);
        assert!(v.summary.contains("not granted"), "{}", v.summary);
        assert_eq!(v.details, "");
    }

    #[test]
    fn a_timeout_is_an_error_unless_latency_is_bounded() {
        let mut t = Script::new(vec![Err(NetError::ResponseTimeout)]);
        let v = probe(&spec(json!({"timeout_ms": 2000})), &mut t);
        assert_eq!(v.outcome, Outcome::Error);
        assert_eq!(
            v.summary,
            "GET http://127.0.0.1:8080/healthz: no answer within 2000 ms (timeout_ms)"
        );

        let mut t = Script::new(vec![Err(NetError::ResponseTimeout)]);
        let v = probe(
            &spec(json!({"timeout_ms": 2000, "max_latency_ms": 500})),
            &mut t,
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "GET http://127.0.0.1:8080/healthz did not answer within 2000 ms (timeout_ms), over max_latency_ms 500"
        );
        assert_eq!(
            v.details,
            "GET http://127.0.0.1:8080/healthz: no answer within 2000 ms (timeout_ms)\n"
        );
        assert_eq!(metric(&v, "samples_ok"), Some(0.0));

        // A connect timeout says nothing about the service's latency.
        let mut t = Script::new(vec![Err(NetError::ConnectTimeout)]);
        let v = probe(&spec(json!({"max_latency_ms": 500})), &mut t);
        assert_eq!(v.outcome, Outcome::Error);
    }

    #[test]
    fn a_service_that_stops_answering_fails() {
        let mut t = Script::new(vec![ok(200, 3, ""), ok(200, 5, ""), Err(NetError::Refused)]);
        let v = probe(&spec(json!({"samples": 4, "interval": "0s"})), &mut t);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "GET http://127.0.0.1:8080/healthz stopped answering at sample 3 of 4: connection refused"
        );
        assert_eq!(
            v.details,
            "the first 2 samples were healthy: 200 in 3.0 ms, 200 in 5.0 ms\n\n\
             GET http://127.0.0.1:8080/healthz at sample 3 of 4: connection refused\n\
             hint: nothing is listening on 127.0.0.1:8080: start the service, or check the host and port in `url`\n"
        );
        assert_eq!(metric(&v, "samples_ok"), Some(2.0));
        assert_eq!(metric(&v, "status"), Some(200.0));
        assert_eq!(metric(&v, "latency_ms"), Some(4.0));
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        assert_eq!(median(&ms(&[])), Duration::ZERO);
        assert_eq!(median(&ms(&[7])), Duration::from_millis(7));
        assert_eq!(median(&ms(&[9, 1, 5])), Duration::from_millis(5));
        assert_eq!(median(&ms(&[1, 9, 3, 5])), Duration::from_millis(4));
    }

    #[test]
    fn long_sample_lists_are_bounded() {
        let rs: Vec<Sample> = (0..50)
            .map(|i| Sample {
                status: 200,
                latency: Duration::from_millis(i),
            })
            .collect();
        let s = sample_list(&rs);
        assert!(s.contains("[… 40 more …]"), "{s}");
        assert!(s.ends_with("200 in 49 ms"), "{s}");
    }

    #[test]
    fn humane_pauses() {
        assert_eq!(humane(Duration::from_millis(500)), "500ms");
        assert_eq!(humane(Duration::from_secs(2)), "2s");
        assert_eq!(humane(Duration::from_millis(1500)), "1.5s");
    }
}
