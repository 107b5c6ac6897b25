//! Why a request got no answer, in plain words. `wasi:http` error codes are converted
//! here, once; the rest of the predicate only sees [`NetError`].

use std::time::Duration;

use wasip2::http::types::ErrorCode;

/// A request that got no (complete) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// The host refused the request: the goal does not grant this `host:port`.
    Denied,
    /// Nothing accepted the connection.
    Refused,
    /// The host name did not resolve.
    Dns(Option<String>),
    /// No connection within `timeout_ms`.
    ConnectTimeout,
    /// Connected, but no answer within `timeout_ms`.
    ResponseTimeout,
    /// The body stopped arriving for longer than `timeout_ms`.
    BodyTimeout,
    /// The TLS handshake failed.
    Tls(String),
    /// The server closed the connection before a complete answer.
    Closed,
    /// The answer is not valid HTTP, or is too large to accept.
    Protocol(String),
    /// The request itself is invalid (a URL or header the HTTP client refuses).
    Invalid(String),
    /// Anything else.
    Other(String),
}

impl NetError {
    /// What happened, as a fragment that reads after "GET http://…: ".
    pub fn describe(&self, timeout: Duration) -> String {
        let ms = timeout.as_millis();
        match self {
            NetError::Denied => {
                "the request was refused by the sandbox: this host and port are not granted".into()
            }
            NetError::Refused => "connection refused".into(),
            NetError::Dns(None) => "the host name does not resolve (DNS lookup failed)".into(),
            NetError::Dns(Some(why)) => {
                format!("the host name does not resolve (DNS lookup failed: {why})")
            }
            NetError::ConnectTimeout => format!("no connection within {ms} ms (timeout_ms)"),
            NetError::ResponseTimeout => format!("no answer within {ms} ms (timeout_ms)"),
            NetError::BodyTimeout => {
                format!("the answer stopped arriving for more than {ms} ms (timeout_ms)")
            }
            NetError::Tls(why) => why.clone(),
            NetError::Closed => {
                "the server closed the connection before answering completely".into()
            }
            NetError::Protocol(why) => format!("the answer is not usable HTTP: {why}"),
            NetError::Invalid(why) => format!("the request is invalid: {why}"),
            NetError::Other(why) => why.clone(),
        }
    }

    /// A next step for the reader, when there is an obvious one. A denial has none here:
    /// the host reports it with the exact grant to add.
    pub fn hint(&self, target: &str) -> Option<String> {
        match self {
            NetError::Refused => Some(format!(
                "nothing is listening on {target}: start the service, or check the host and port in `url`"
            )),
            NetError::Dns(_) => Some("check the host name in `url`".into()),
            NetError::ConnectTimeout => Some(format!(
                "{target} does not accept connections in time: is it reachable from this machine?"
            )),
            NetError::ResponseTimeout | NetError::BodyTimeout => Some(
                "the service accepted the connection but is slow or stuck; raise `timeout_ms` if it is just slow".into(),
            ),
            NetError::Tls(_) => Some(
                "the certificate must be valid for the host name and signed by a public CA; a self-signed certificate is not accepted".into(),
            ),
            _ => None,
        }
    }

    /// Whether the request timed out after the connection was made: the server took too
    /// long to answer, which is a latency finding when `max_latency_ms` is set.
    pub fn is_slow_answer(&self) -> bool {
        matches!(self, NetError::ResponseTimeout | NetError::BodyTimeout)
    }

    /// A failure while reading the body that `wasi:http` gave no error code for; the
    /// host's message is all there is (e.g. `connection read timeout`).
    pub fn from_body_error(message: &str) -> NetError {
        let lower = message.to_ascii_lowercase();
        if lower.contains("timeout") || lower.contains("timed out") {
            NetError::BodyTimeout
        } else {
            NetError::Other(format!(
                "the answer broke off while its body was read ({})",
                message.trim()
            ))
        }
    }
}

impl From<ErrorCode> for NetError {
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::HttpRequestDenied => NetError::Denied,
            ErrorCode::ConnectionRefused | ErrorCode::DestinationUnavailable => NetError::Refused,
            ErrorCode::DestinationNotFound => NetError::Dns(None),
            ErrorCode::DestinationIpProhibited | ErrorCode::DestinationIpUnroutable => {
                NetError::Other("the destination address is unreachable".into())
            }
            ErrorCode::DnsTimeout => NetError::Dns(Some("timed out".into())),
            ErrorCode::DnsError(p) => NetError::Dns(p.rcode.filter(|r| !r.is_empty())),
            ErrorCode::ConnectionTimeout => NetError::ConnectTimeout,
            ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout => NetError::ResponseTimeout,
            ErrorCode::TlsProtocolError => NetError::Tls("the TLS handshake failed".into()),
            ErrorCode::TlsCertificateError => {
                NetError::Tls("the server's TLS certificate is not trusted".into())
            }
            ErrorCode::TlsAlertReceived(p) => NetError::Tls(format!(
                "the server ended the TLS handshake with an alert{}",
                p.alert_message
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )),
            ErrorCode::ConnectionTerminated | ErrorCode::HttpResponseIncomplete => NetError::Closed,
            ErrorCode::ConnectionLimitReached => {
                NetError::Other("the connection limit was reached".into())
            }
            ErrorCode::HttpResponseHeaderSectionSize(_) | ErrorCode::HttpResponseHeaderSize(_) => {
                NetError::Protocol("its headers are too large".into())
            }
            ErrorCode::HttpResponseBodySize(_) => {
                NetError::Protocol("its body is too large".into())
            }
            ErrorCode::HttpResponseTrailerSectionSize(_)
            | ErrorCode::HttpResponseTrailerSize(_) => {
                NetError::Protocol("its trailers are too large".into())
            }
            ErrorCode::HttpResponseTransferCoding(c) => NetError::Protocol(format!(
                "unsupported transfer coding{}",
                c.map(|c| format!(" `{c}`")).unwrap_or_default()
            )),
            ErrorCode::HttpResponseContentCoding(c) => NetError::Protocol(format!(
                "unsupported content coding{}",
                c.map(|c| format!(" `{c}`")).unwrap_or_default()
            )),
            ErrorCode::HttpProtocolError => {
                NetError::Protocol("the server does not speak HTTP/1.1 as expected".into())
            }
            ErrorCode::HttpUpgradeFailed => NetError::Protocol("the upgrade failed".into()),
            ErrorCode::LoopDetected => NetError::Protocol("a loop was detected".into()),
            ErrorCode::HttpRequestMethodInvalid => NetError::Invalid("the method".into()),
            ErrorCode::HttpRequestUriInvalid | ErrorCode::HttpRequestUriTooLong => {
                NetError::Invalid("the URL".into())
            }
            ErrorCode::HttpRequestLengthRequired
            | ErrorCode::HttpRequestBodySize(_)
            | ErrorCode::HttpRequestHeaderSectionSize(_)
            | ErrorCode::HttpRequestHeaderSize(_)
            | ErrorCode::HttpRequestTrailerSectionSize(_)
            | ErrorCode::HttpRequestTrailerSize(_) => {
                NetError::Invalid("its headers or body are too large".into())
            }
            ErrorCode::ConfigurationError => {
                NetError::Other("the sandbox's HTTP client is misconfigured".into())
            }
            ErrorCode::InternalError(m) => NetError::Other(match m {
                Some(m) if !m.is_empty() => format!("the HTTP client failed: {m}"),
                _ => "the HTTP client failed".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasip2::http::types::{DnsErrorPayload, TlsAlertReceivedPayload};

    const T: Duration = Duration::from_millis(10_000);

    fn said(code: ErrorCode) -> String {
        NetError::from(code).describe(T)
    }

    #[test]
    fn error_codes_in_plain_words() {
        assert_eq!(said(ErrorCode::ConnectionRefused), "connection refused");
        assert!(said(ErrorCode::HttpRequestDenied).contains("not granted"));
        assert_eq!(
            said(ErrorCode::DnsError(DnsErrorPayload {
                rcode: Some("address not available".into()),
                info_code: None
            })),
            "the host name does not resolve (DNS lookup failed: address not available)"
        );
        assert_eq!(
            said(ErrorCode::ConnectionTimeout),
            "no connection within 10000 ms (timeout_ms)"
        );
        assert_eq!(
            said(ErrorCode::ConnectionReadTimeout),
            "no answer within 10000 ms (timeout_ms)"
        );
        assert_eq!(
            said(ErrorCode::HttpResponseTimeout),
            said(ErrorCode::ConnectionReadTimeout)
        );
        assert!(said(ErrorCode::TlsCertificateError).contains("not trusted"));
        assert!(
            said(ErrorCode::TlsAlertReceived(TlsAlertReceivedPayload {
                alert_id: Some(40),
                alert_message: Some("handshake failure".into())
            }))
            .ends_with("alert: handshake failure")
        );
        assert!(said(ErrorCode::HttpResponseIncomplete).contains("closed the connection"));
        assert!(said(ErrorCode::InternalError(Some("boom".into()))).ends_with("boom"));
        assert_eq!(
            said(ErrorCode::InternalError(None)),
            "the HTTP client failed"
        );
    }

    #[test]
    fn body_errors_without_a_code() {
        assert_eq!(
            NetError::from_body_error("connection read timeout"),
            NetError::BodyTimeout
        );
        assert_eq!(
            NetError::BodyTimeout.describe(T),
            "the answer stopped arriving for more than 10000 ms (timeout_ms)"
        );
        assert_eq!(
            NetError::from_body_error("hyper error: error reading a body from connection")
                .describe(T),
            "the answer broke off while its body was read (hyper error: error reading a body from connection)"
        );
    }

    #[test]
    fn hints_name_the_target() {
        let h = NetError::Refused.hint("localhost:8080").unwrap();
        assert!(h.contains("nothing is listening on localhost:8080"));
        assert_eq!(NetError::Denied.hint("example.com:443"), None);
        assert_eq!(NetError::Closed.hint("h:1"), None);
    }

    #[test]
    fn only_answer_timeouts_are_slow_answers() {
        assert!(NetError::ResponseTimeout.is_slow_answer());
        assert!(NetError::BodyTimeout.is_slow_answer());
        assert!(!NetError::ConnectTimeout.is_slow_answer());
        assert!(!NetError::Refused.is_slow_answer());
    }
}
