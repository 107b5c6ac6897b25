//! A small HTTP/1.1 client for registries: one request per connection over TCP, or TLS
//! (rustls with the Mozilla roots). It reuses the hyper + rustls + ring stack that
//! wasmtime-wasi-http already builds, so packages add no second HTTP or TLS stack.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one whole request (connect, send, receive) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("`{0}` is not a valid URL")]
    BadUrl(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS with {addr} failed: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr} did not answer within {}", humantime::format_duration(*timeout))]
    Timeout { addr: String, timeout: Duration },
    #[error("HTTP exchange with {addr} failed: {reason}")]
    Http { addr: String, reason: String },
    #[error("the response from {addr} is larger than {limit} bytes")]
    TooLarge { addr: String, limit: usize },
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Send one request and read the whole response (at most `limit` body bytes).
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
    limit: usize,
) -> Result<Response, TransportError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| TransportError::BadUrl(url.to_owned()))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(TransportError::BadUrl(url.to_owned())),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| TransportError::BadUrl(url.to_owned()))?
        .clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addr = authority.to_string();
    let exchange = async {
        let tcp =
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port)))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(source)) => {
                    return Err(TransportError::Connect {
                        addr: addr.clone(),
                        source,
                    });
                }
                Err(_) => {
                    return Err(TransportError::Timeout {
                        addr: addr.clone(),
                        timeout: CONNECT_TIMEOUT,
                    });
                }
            };
        let io: Box<dyn Io> = if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| {
                TransportError::Tls {
                    addr: addr.clone(),
                    source: std::io::Error::other(e),
                }
            })?;
            let tls = tokio_rustls::TlsConnector::from(tls_config())
                .connect(name, tcp)
                .await
                .map_err(|source| TransportError::Tls {
                    addr: addr.clone(),
                    source,
                })?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let http_err = |e: hyper::Error| TransportError::Http {
            addr: addr.clone(),
            reason: e.to_string(),
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(http_err)?;
        let driver = tokio::spawn(conn);
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let sends_body = !body.is_empty() || method == Method::PUT || method == Method::POST;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, addr.as_str())
            .header(
                http::header::USER_AGENT,
                concat!("kazi/", env!("CARGO_PKG_VERSION")),
            );
        if sends_body {
            req = req.header(http::header::CONTENT_LENGTH, body.len());
        }
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| TransportError::BadUrl(format!("{url} ({e})")))?;
        let resp = sender.send_request(req).await.map_err(http_err)?;
        let (parts, incoming) = resp.into_parts();
        let body = Limited::new(incoming, limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    TransportError::TooLarge {
                        addr: addr.clone(),
                        limit,
                    }
                } else {
                    TransportError::Http {
                        addr: addr.clone(),
                        reason: e.to_string(),
                    }
                }
            })?
            .to_bytes();
        drop(sender);
        driver.abort();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(r) => r,
        Err(_) => Err(TransportError::Timeout {
            addr: authority.to_string(),
            timeout: REQUEST_TIMEOUT,
        }),
    }
}
