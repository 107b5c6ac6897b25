//! The real [`Transport`]: one `wasi:http` request per sample, blocking on pollables,
//! and the monotonic clock for latency and pauses. Only this module touches bindings.

use std::time::Duration;

use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingResponse, Method as WasiMethod, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme as WasiScheme, http_error_code,
};
use wasip2::io::streams::{InputStream, StreamError};

use crate::check::{BODY_CAP, Response};
use crate::config::{Method, Spec};
use crate::net::NetError;
use crate::probe::Transport;
use crate::url::Scheme;

/// The largest write `blocking-write-and-flush` accepts at once.
const WRITE_CHUNK: usize = 4096;
/// How much one read asks for.
const READ_CHUNK: u64 = 64 * 1024;

/// `wasi:http` and `wasi:clocks`, as the host grants them.
pub struct Wasi;

impl Transport for Wasi {
    fn send(&mut self, spec: &Spec) -> Result<Response, NetError> {
        let request = request(spec)?;
        let outgoing_body = match &spec.body {
            Some(_) => Some(
                request
                    .body()
                    .map_err(|()| NetError::Other("the request body was already taken".into()))?,
            ),
            None => None,
        };
        let options = options(spec.timeout);
        let started = monotonic_clock::now();
        let future = outgoing_handler::handle(request, Some(options))?;
        if let (Some(out), Some(body)) = (outgoing_body, &spec.body) {
            write_body(out, body.as_bytes())?;
        }
        let response = loop {
            if let Some(result) = future.get() {
                break result
                    .map_err(|()| NetError::Other("the response was already taken".into()))??;
            }
            future.subscribe().block();
        };
        let status = response.status();
        let headers = headers(&response);
        let (body, truncated) = read_body(&response)?;
        let latency = Duration::from_nanos(monotonic_clock::now().saturating_sub(started));
        Ok(Response {
            status,
            headers,
            body,
            truncated,
            latency,
        })
    }

    fn pause(&mut self, duration: Duration) {
        let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        monotonic_clock::subscribe_duration(ns).block();
    }
}

fn request(spec: &Spec) -> Result<OutgoingRequest, NetError> {
    let mut fields: Vec<(String, Vec<u8>)> = spec
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    let has = |name: &str| {
        spec.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    if !has("user-agent") {
        let agent = concat!("kazi-http/", env!("CARGO_PKG_VERSION"));
        fields.push(("user-agent".into(), agent.as_bytes().to_vec()));
    }
    match (&spec.body, spec.method) {
        (Some(body), _) => {
            fields.push(("content-length".into(), body.len().to_string().into_bytes()))
        }
        // Some servers refuse a body-less POST without a length.
        (None, Method::Post | Method::Put | Method::Patch) => {
            fields.push(("content-length".into(), b"0".to_vec()));
        }
        (None, _) => {}
    }
    let headers = Fields::from_list(&fields)
        .map_err(|e| NetError::Invalid(format!("the headers were refused ({e:?})")))?;
    let request = OutgoingRequest::new(headers);
    let method = match spec.method {
        Method::Get => WasiMethod::Get,
        Method::Head => WasiMethod::Head,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
        Method::Patch => WasiMethod::Patch,
        Method::Delete => WasiMethod::Delete,
        Method::Options => WasiMethod::Options,
    };
    request
        .set_method(&method)
        .map_err(|()| NetError::Invalid(format!("the method {}", spec.method.as_str())))?;
    let scheme = match spec.url.scheme {
        Scheme::Http => WasiScheme::Http,
        Scheme::Https => WasiScheme::Https,
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| NetError::Invalid("the URL's scheme".into()))?;
    let authority = spec.url.authority();
    request
        .set_authority(Some(&authority))
        .map_err(|()| NetError::Invalid(format!("the URL's host `{authority}`")))?;
    request
        .set_path_with_query(Some(&spec.url.path_and_query))
        .map_err(|()| {
            NetError::Invalid(format!(
                "the URL's path `{}` (percent-encode unusual characters)",
                spec.url.path_and_query
            ))
        })?;
    Ok(request)
}

/// The same limit for connecting, the first byte of the answer, and between bytes.
fn options(timeout: Duration) -> RequestOptions {
    let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    let options = RequestOptions::new();
    // A host that does not support a timeout refuses to set it; the evaluation's own
    // wall-clock limit still applies, so this is not an error.
    let _ = options.set_connect_timeout(Some(ns));
    let _ = options.set_first_byte_timeout(Some(ns));
    let _ = options.set_between_bytes_timeout(Some(ns));
    options
}

fn write_body(out: OutgoingBody, body: &[u8]) -> Result<(), NetError> {
    {
        let stream = out
            .write()
            .map_err(|()| NetError::Other("the request body stream was already taken".into()))?;
        for chunk in body.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(stream_error)?;
        }
        // The stream must be dropped before the body is finished.
    }
    OutgoingBody::finish(out, None)?;
    Ok(())
}

fn headers(response: &IncomingResponse) -> Vec<(String, String)> {
    let fields = response.headers();
    let entries = fields.entries();
    drop(fields);
    entries
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect()
}

/// Read at most [`BODY_CAP`] bytes of the body; the flag says whether there was more.
fn read_body(response: &IncomingResponse) -> Result<(Vec<u8>, bool), NetError> {
    let body: IncomingBody = response
        .consume()
        .map_err(|()| NetError::Other("the response body was already taken".into()))?;
    let stream: InputStream = body
        .stream()
        .map_err(|()| NetError::Other("the response body stream was already taken".into()))?;
    let mut bytes = Vec::new();
    let result = loop {
        // One byte past the cap tells whether the body is longer.
        let room = (BODY_CAP + 1 - bytes.len()) as u64;
        if room == 0 {
            break Ok(());
        }
        match stream.blocking_read(room.min(READ_CHUNK)) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break Ok(()),
            Err(e) => break Err(stream_error(e)),
        }
    };
    // Children before parents: the stream, then the body.
    drop(stream);
    drop(body);
    result?;
    let truncated = bytes.len() > BODY_CAP;
    bytes.truncate(BODY_CAP);
    Ok((bytes, truncated))
}

fn stream_error(e: StreamError) -> NetError {
    match e {
        StreamError::Closed => NetError::Closed,
        StreamError::LastOperationFailed(io) => match http_error_code(&io) {
            Some(code) => code.into(),
            None => NetError::from_body_error(&io.to_debug_string()),
        },
    }
}
