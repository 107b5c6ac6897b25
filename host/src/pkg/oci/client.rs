//! The registry client: HTTP requests over `pkg::http`, with the auth
//! registries ask for (a `WWW-Authenticate` challenge answered once, with Basic
//! credentials or a Bearer token from the registry's token service), redirects, and
//! registry errors turned into messages with a hint.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;

use super::{Credentials, RegistryError, credentials};
use crate::pkg::http::{self as transport, Response, TransportError};

/// Largest image manifest or tag list page read.
pub(super) const MAX_MANIFEST: usize = 4 << 20;
/// Largest blob (component) read.
pub(super) const MAX_BLOB: usize = 256 << 20;
/// Largest answer to anything else.
pub(super) const MAX_SMALL: usize = 1 << 20;

/// A registry client for one registry.
pub struct Client {
    registry: String,
    base: String,
    insecure: bool,
    credentials: Option<Credentials>,
    /// The `Authorization` header that worked last (Basic or a Bearer token).
    authorization: Mutex<Option<String>>,
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut map = BTreeMap::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        map.insert(key, value.to_owned());
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: map.remove("realm")?,
        service: map.remove("service"),
        scope: map.remove("scope"),
    })
}

/// The first error of a registry error body, `CODE: message`.
pub(super) fn registry_error(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<Error>,
    }
    #[derive(Deserialize)]
    struct Error {
        code: String,
        #[serde(default)]
        message: String,
    }
    let e: Errors = serde_json::from_slice(body).ok()?;
    let first = e.errors.into_iter().next()?;
    Some(if first.message.is_empty() {
        first.code
    } else {
        format!("{} ({})", first.code, first.message)
    })
}

/// `s` with everything but unreserved URL characters percent-encoded.
pub(super) fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for `registry` (`host[:port]`), over HTTPS, or plain HTTP when
    /// `insecure`. Credentials come from [`credentials`].
    pub fn new(registry: &str, insecure: bool) -> Result<Self, RegistryError> {
        Ok(Self::with_credentials(
            registry,
            insecure,
            credentials(registry)?,
        ))
    }

    /// A client with explicit credentials.
    pub fn with_credentials(
        registry: &str,
        insecure: bool,
        credentials: Option<Credentials>,
    ) -> Self {
        let scheme = if insecure { "http" } else { "https" };
        // Docker Hub is named `docker.io` but serves the API elsewhere.
        let host = match registry {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        };
        Self {
            registry: registry.to_owned(),
            base: format!("{scheme}://{host}"),
            insecure,
            credentials,
            authorization: Mutex::new(None),
        }
    }

    /// The registry's name, `host[:port]`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub(super) fn transport_error(&self, e: TransportError) -> RegistryError {
        let reg = &self.registry;
        let hint = match &e {
            TransportError::Connect { .. } | TransportError::Timeout { .. } => format!(
                "hint: check that the registry {reg} is running and reachable, and the address is right"
            ),
            TransportError::Tls { .. } if !self.insecure => format!(
                "hint: if {reg} is a plain-HTTP registry (a local test registry), pass --insecure"
            ),
            TransportError::Http { .. } if self.insecure => {
                format!("hint: if {reg} speaks HTTPS, drop --insecure")
            }
            _ => "hint: try again; if it persists, check the registry".to_owned(),
        };
        RegistryError::Transport {
            registry: reg.clone(),
            source: e,
            hint,
        }
    }

    pub(super) fn status_error(&self, what: &str, resp: &Response) -> RegistryError {
        let detail = registry_error(&resp.body).unwrap_or_else(|| {
            String::from_utf8_lossy(&resp.body)
                .trim()
                .chars()
                .take(200)
                .collect()
        });
        let hint = match resp.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Some(format!(
                "log in: set KAZI_REGISTRY_USERNAME and KAZI_REGISTRY_PASSWORD, or `docker login {}`",
                self.registry
            )),
            StatusCode::BAD_REQUEST if detail.contains("HTTPS") => {
                Some("this registry speaks HTTPS: drop --insecure".to_owned())
            }
            _ => None,
        };
        RegistryError::Status {
            registry: self.registry.clone(),
            status: resp.status,
            what: what.to_owned(),
            detail: (!detail.is_empty()).then_some(detail),
            hint,
        }
    }

    /// Send a request, answering auth challenges once and following redirects.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
        limit: usize,
        scope: &str,
    ) -> Result<Response, RegistryError> {
        let mut url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut tried_auth = false;
        let mut redirects = 0;
        loop {
            let same_host = url
                .strip_prefix(&self.base)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            let mut hs: Vec<(&str, String)> = headers.to_vec();
            if same_host && let Some(a) = self.authorization.lock().expect("auth lock").clone() {
                hs.push(("authorization", a));
            }
            let resp = transport::send(method.clone(), &url, &hs, body.clone(), limit)
                .await
                .map_err(|e| self.transport_error(e))?;
            if resp.status == StatusCode::UNAUTHORIZED && same_host && tried_auth {
                return Err(self.login_needed());
            }
            if resp.status == StatusCode::UNAUTHORIZED && same_host {
                tried_auth = true;
                let challenge = resp.header("www-authenticate").and_then(parse_challenge);
                match challenge {
                    Some(Challenge::Basic) => {
                        let Some(c) = &self.credentials else {
                            return Err(self.login_needed());
                        };
                        let token = B64.encode(format!("{}:{}", c.username, c.password));
                        *self.authorization.lock().expect("auth lock") =
                            Some(format!("Basic {token}"));
                        continue;
                    }
                    Some(Challenge::Bearer {
                        realm,
                        service,
                        scope: wanted,
                    }) => {
                        let token = self
                            .bearer_token(
                                &realm,
                                service.as_deref(),
                                wanted.as_deref().unwrap_or(scope),
                            )
                            .await?;
                        *self.authorization.lock().expect("auth lock") =
                            Some(format!("Bearer {token}"));
                        continue;
                    }
                    None => return Err(self.login_needed()),
                }
            }
            if resp.status.is_redirection()
                && let Some(loc) = resp.header("location")
            {
                redirects += 1;
                if redirects > 5 {
                    return Err(RegistryError::TooManyRedirects {
                        registry: self.registry.clone(),
                    });
                }
                url = if loc.starts_with("http://") || loc.starts_with("https://") {
                    loc.to_owned()
                } else {
                    let origin_end = url
                        .find("://")
                        .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j))
                        .unwrap_or(url.len());
                    format!("{}{loc}", &url[..origin_end])
                };
                continue;
            }
            return Ok(resp);
        }
    }

    fn login_needed(&self) -> RegistryError {
        RegistryError::LoginNeeded {
            registry: self.registry.clone(),
            refused: self.credentials.as_ref().map(|c| c.username.clone()),
        }
    }

    async fn bearer_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let mut url = realm.to_owned();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(s) = service {
            url.push_str(&format!("{sep}service={}", percent_encode(s)));
            sep = '&';
        }
        url.push_str(&format!("{sep}scope={}", percent_encode(scope)));
        let mut hs = Vec::new();
        if let Some(c) = &self.credentials {
            hs.push((
                "authorization",
                format!(
                    "Basic {}",
                    B64.encode(format!("{}:{}", c.username, c.password))
                ),
            ));
        }
        let resp = transport::send(Method::GET, &url, &hs, Bytes::new(), MAX_SMALL)
            .await
            .map_err(|e| self.transport_error(e))?;
        if !resp.status.is_success() {
            return Err(if resp.status == StatusCode::UNAUTHORIZED {
                self.login_needed()
            } else {
                self.status_error("a token request", &resp)
            });
        }
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token =
            serde_json::from_slice(&resp.body).map_err(|source| RegistryError::BadToken {
                registry: self.registry.clone(),
                source,
            })?;
        t.token
            .or(t.access_token)
            .ok_or_else(|| RegistryError::NoToken {
                registry: self.registry.clone(),
            })
    }

    pub(super) fn pull_scope(repo: &str) -> String {
        format!("repository:{repo}:pull")
    }

    pub(super) fn push_scope(repo: &str) -> String {
        format!("repository:{repo}:pull,push")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_challenges_parse() {
        assert_eq!(
            parse_challenge("Basic realm=\"Registry\""),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                "Bearer realm=\"https://ghcr.io/token\",service=\"ghcr.io\",scope=\"repository:a/b:pull\""
            ),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
                scope: Some("repository:a/b:pull".into()),
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn registry_errors_are_summarised() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            registry_error(body).unwrap(),
            "MANIFEST_UNKNOWN (manifest unknown)"
        );
        assert_eq!(registry_error(b"<html>"), None);
        assert_eq!(percent_encode("sha256:ab/c d"), "sha256%3Aab%2Fc%20d");
    }
}
