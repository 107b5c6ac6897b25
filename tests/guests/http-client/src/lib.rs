//! Adversarial guest: a plain `wasi:http` GET of config `url`, blocking on pollables.
//! Passes with the status code (and body in the details) if it got a response;
//! errors with the `wasi:http` error code otherwise.
use kazi_sdk::prelude::*;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// How much of the response body is kept.
const BODY_CAP: usize = 64 * 1024;

struct HttpClient;

impl Predicate for HttpClient {
    fn describe() -> Description {
        Description {
            name: "http-client".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "GETs whatever URL its config names".into(),
            config_schema: json!({"type": "object", "properties": {"url": {"type": "string"}}}),
            // Asks for nothing: a hostile guest does not announce what it will reach.
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(config: Config, _cx: &Context) -> Result<Verdict> {
        let url = config.require_str("url")?;
        let (scheme, authority, path) = split_url(url)?;

        let request = OutgoingRequest::new(Fields::new());
        request
            .set_method(&Method::Get)
            .map_err(|()| Error::new("cannot set method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| Error::new(format!("cannot set scheme of {url}")))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| Error::new(format!("cannot set authority {authority}")))?;
        request
            .set_path_with_query(Some(path))
            .map_err(|()| Error::new(format!("cannot set path {path}")))?;

        let future = outgoing_handler::handle(request, None)
            .map_err(|e| Error::new(format!("GET {url} refused: {e:?}")))?;
        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(e))) => return Err(Error::new(format!("GET {url} failed: {e:?}"))),
            Some(Err(())) => return Err(Error::new("response already taken")),
            None => return Err(Error::new("response not ready after blocking")),
        };
        let status = response.status();
        let body = read_body(&response).unwrap_or_else(|e| format!("<body unreadable: {e}>"));
        Ok(Verdict::pass(format!("GET {url}: status {status}")).with_details(body))
    }
}

fn split_url(url: &str) -> Result<(Scheme, &str, &str)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::new(format!("not an absolute URL: {url}")))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((scheme, authority, path))
}

fn read_body(response: &wasip2::http::types::IncomingResponse) -> Result<String> {
    let body = response
        .consume()
        .map_err(|()| Error::new("body already consumed"))?;
    let stream = body
        .stream()
        .map_err(|()| Error::new("body stream already taken"))?;
    let mut bytes = Vec::new();
    while bytes.len() < BODY_CAP {
        match stream.blocking_read((BODY_CAP - bytes.len()) as u64) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(Error::new(e.to_debug_string()));
            }
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

export_predicate!(HttpClient);
