//! OCI registries: references, credentials, and the parts of the distribution API a
//! package needs (blobs, manifests, tags), with Basic and Bearer-token auth.
//!
//! A package is a WebAssembly OCI artifact as the CNCF wasm-OCI layout describes it
//! (what `wkg` and `oci-wasm` write): an image manifest whose config has media type
//! `application/vnd.wasm.config.v0+json` and whose one layer is the component
//! (`application/wasm`). The published `kazi-package.toml` and the signature travel
//! in the manifest's annotations, so other wasm tools still see a plain component.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::PkgError;
use super::http::{self as transport, Response, TransportError};
use super::manifest::{Manifest, sha256_digest};
use super::sign::Signature;

/// The image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The wasm artifact config media type.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The component layer media type.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The annotation carrying the published `kazi-package.toml`.
pub const KAZI_MANIFEST_ANNOTATION: &str = "dev.kazi.package.manifest";
/// The annotation carrying the package signature (TOML).
pub const KAZI_SIGNATURE_ANNOTATION: &str = "dev.kazi.package.signature";

const MAX_MANIFEST: usize = 4 << 20;
const MAX_BLOB: usize = 256 << 20;
const MAX_SMALL: usize = 1 << 20;

/// `registry/repository[:tag][@digest]`, such as `ghcr.io/acme/coverage:1.2.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`.
    pub registry: String,
    /// `namespace/name` (any depth).
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<hex>` of the image manifest.
    pub digest: Option<String>,
}

fn valid_repository(r: &str) -> bool {
    !r.is_empty()
        && r.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && part.as_bytes()[0].is_ascii_alphanumeric()
                && part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
        })
}

fn valid_tag(t: &str) -> bool {
    (1..=128).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !t.starts_with(['.', '-'])
}

impl FromStr for Reference {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.trim().trim_start_matches("oci://");
        let shape = "write REGISTRY/NAMESPACE/NAME[:VERSION], such as ghcr.io/acme/coverage:1.2.0 or 127.0.0.1:5000/acme/coverage:1.2.0";
        let Some((registry, rest)) = text.split_once('/') else {
            return Err(format!("`{s}` is not a registry reference; {shape}"));
        };
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(format!(
                "`{s}` names no registry (`{registry}` is not a host); {shape}"
            ));
        }
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => {
                let ok = d
                    .strip_prefix("sha256:")
                    .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
                if !ok {
                    return Err(format!(
                        "`{s}` has an invalid digest `{d}`; expected sha256: and 64 hex digits"
                    ));
                }
                (r, Some(d.to_owned()))
            }
            None => (rest, None),
        };
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t.to_owned())),
            _ => (rest, None),
        };
        if !valid_repository(repository) {
            return Err(format!(
                "`{s}` has an invalid repository `{repository}`: use lower-case letters, digits, `.`, `_`, `-` and `/`; {shape}"
            ));
        }
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(format!(
                "`{s}` has an invalid tag `{t}`: use letters, digits, `.`, `_` and `-` (a semver build suffix `+…` cannot be a tag)"
            ));
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl Reference {
    /// The same repository at another tag.
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    fn reference(&self) -> Result<&str, PkgError> {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .ok_or_else(|| {
                PkgError::Registry(format!("`{self}` names no version; hint: add `:VERSION`"))
            })
    }
}

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

/// Credentials for `registry`: `KAZI_REGISTRY_USERNAME` + `KAZI_REGISTRY_PASSWORD`, else
/// the `auths` of the Docker config (`$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`), else none (anonymous).
pub fn credentials(registry: &str) -> Result<Option<Credentials>, PkgError> {
    let user = std::env::var("KAZI_REGISTRY_USERNAME")
        .ok()
        .filter(|u| !u.is_empty());
    let pass = std::env::var("KAZI_REGISTRY_PASSWORD").ok();
    match (user, pass) {
        (Some(username), Some(password)) => {
            return Ok(Some(Credentials { username, password }));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(PkgError::Registry(
                "only one of KAZI_REGISTRY_USERNAME and KAZI_REGISTRY_PASSWORD is set; hint: set both, or neither to use the Docker config".into(),
            ));
        }
        (None, None) => {}
    }
    let path = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => std::path::PathBuf::from(d).join("config.json"),
        None => match dirs::home_dir() {
            Some(h) => h.join(".docker").join("config.json"),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PkgError::io("read", &path, e)),
    };
    docker_config_credentials(&text, registry).map_err(|message| PkgError::Manifest {
        path: path.clone(),
        message,
    })
}

/// The credentials for `registry` in a Docker `config.json`.
fn docker_config_credentials(text: &str, registry: &str) -> Result<Option<Credentials>, String> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        auths: BTreeMap<String, Auth>,
    }
    #[derive(Deserialize)]
    struct Auth {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }
    let config: Config =
        serde_json::from_str(text).map_err(|e| format!("not a Docker config file: {e}"))?;
    let wanted = |key: &str| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let host = host.split('/').next().unwrap_or(host);
        host == registry
            || (matches!(registry, "docker.io" | "registry-1.docker.io")
                && host == "index.docker.io")
    };
    let Some(auth) = config.auths.iter().find(|(k, _)| wanted(k)).map(|(_, a)| a) else {
        return Ok(None);
    };
    if let (Some(username), Some(password)) = (&auth.username, &auth.password) {
        return Ok(Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        }));
    }
    let Some(encoded) = auth.auth.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let decoded = B64
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| format!("the `auth` for {registry} is not base64 of `user:password`"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| format!("the `auth` for {registry} is not base64 of `user:password`"))?;
    Ok(Some(Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    }))
}

/// A descriptor in an image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The wasm artifact config (`application/vnd.wasm.config.v0+json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    pub created: String,
    #[serde(default)]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    pub layer_digests: Vec<String>,
    pub component: Option<WasmComponent>,
}

/// What the component imports and exports, for indexes and other tools.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WasmComponent {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    #[serde(default)]
    pub target: Option<String>,
}

/// A package as it travels: the published manifest (its exact text), the component,
/// and the signature if there is one.
#[derive(Debug, Clone)]
pub struct Package {
    pub manifest: Manifest,
    pub manifest_text: String,
    pub component: Vec<u8>,
    pub signature: Option<Signature>,
}

impl Package {
    /// `sha256:` of the manifest text (what a signature covers).
    pub fn manifest_digest(&self) -> String {
        sha256_digest(self.manifest_text.as_bytes())
    }
}

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
fn registry_error(body: &[u8]) -> Option<String> {
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

/// The target of `rel="next"` in a `Link` header: `</v2/x/tags/list?last=a&n=50>; rel="next"`.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

fn percent_encode(s: &str) -> String {
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
    pub fn new(registry: &str, insecure: bool) -> Result<Self, PkgError> {
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

    fn transport_error(&self, e: TransportError) -> PkgError {
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
        PkgError::Registry(format!("cannot talk to the registry {reg}: {e}; {hint}"))
    }

    fn status_error(&self, what: &str, resp: &Response) -> PkgError {
        let detail = registry_error(&resp.body).unwrap_or_else(|| {
            String::from_utf8_lossy(&resp.body)
                .trim()
                .chars()
                .take(200)
                .collect()
        });
        let hint = match resp.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => format!(
                "; hint: log in: set KAZI_REGISTRY_USERNAME and KAZI_REGISTRY_PASSWORD, or `docker login {}`",
                self.registry
            ),
            StatusCode::BAD_REQUEST if detail.contains("HTTPS") => {
                "; hint: this registry speaks HTTPS: drop --insecure".to_owned()
            }
            _ => String::new(),
        };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        PkgError::Registry(format!(
            "the registry {} answered {} to {what}{detail}{hint}",
            self.registry, resp.status
        ))
    }

    /// Send a request, answering auth challenges once and following redirects.
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
        limit: usize,
        scope: &str,
    ) -> Result<Response, PkgError> {
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
                    return Err(PkgError::Registry(format!(
                        "the registry {} redirected more than 5 times",
                        self.registry
                    )));
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

    fn login_needed(&self) -> PkgError {
        PkgError::Registry(format!(
            "the registry {} wants a login{}; hint: set KAZI_REGISTRY_USERNAME and KAZI_REGISTRY_PASSWORD, or `docker login {}`",
            self.registry,
            match &self.credentials {
                Some(c) => format!(" and refused the credentials of `{}`", c.username),
                None => String::new(),
            },
            self.registry
        ))
    }

    async fn bearer_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, PkgError> {
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
        let t: Token = serde_json::from_slice(&resp.body).map_err(|e| {
            PkgError::Registry(format!(
                "the token service of {} answered something that is not a token: {e}",
                self.registry
            ))
        })?;
        t.token.or(t.access_token).ok_or_else(|| {
            PkgError::Registry(format!(
                "the token service of {} answered no token",
                self.registry
            ))
        })
    }

    fn pull_scope(repo: &str) -> String {
        format!("repository:{repo}:pull")
    }

    fn push_scope(repo: &str) -> String {
        format!("repository:{repo}:pull,push")
    }

    /// Whether the repository has the blob.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool, PkgError> {
        let resp = self
            .call(
                Method::HEAD,
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                Bytes::new(),
                MAX_SMALL,
                &Self::push_scope(repo),
            )
            .await?;
        match resp.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(&format!("a check for blob {digest}"), &resp)),
        }
    }

    /// Upload a blob (monolithically) unless it is there; returns its digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> Result<String, PkgError> {
        let digest = sha256_digest(bytes);
        if self.blob_exists(repo, &digest).await? {
            return Ok(digest);
        }
        let scope = Self::push_scope(repo);
        let start = self
            .call(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Bytes::new(),
                MAX_SMALL,
                &scope,
            )
            .await?;
        if start.status != StatusCode::ACCEPTED {
            return Err(self.status_error("starting an upload", &start));
        }
        let location = start.header("location").ok_or_else(|| {
            PkgError::Registry(format!(
                "the registry {} started an upload without a Location",
                self.registry
            ))
        })?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", percent_encode(&digest));
        let done = self
            .call(
                Method::PUT,
                &url,
                &[("content-type", "application/octet-stream".to_owned())],
                Bytes::copy_from_slice(bytes),
                MAX_SMALL,
                &scope,
            )
            .await?;
        if done.status != StatusCode::CREATED {
            return Err(self.status_error(&format!("the upload of {digest}"), &done));
        }
        Ok(digest)
    }

    /// Download a blob and check it hashes to `digest`; `what` names it in messages.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &str,
        what: &str,
    ) -> Result<Vec<u8>, PkgError> {
        let resp = self
            .call(
                Method::GET,
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                Bytes::new(),
                MAX_BLOB,
                &Self::pull_scope(repo),
            )
            .await?;
        if !resp.status.is_success() {
            return Err(self.status_error(&format!("a download of {what}"), &resp));
        }
        let found = sha256_digest(&resp.body);
        if found != digest {
            return Err(PkgError::Digest {
                what: what.to_owned(),
                expected: digest.to_owned(),
                found,
            });
        }
        Ok(resp.body.to_vec())
    }

    /// Fetch an image manifest by tag or digest; returns its bytes and digest.
    pub async fn get_manifest(&self, reference: &Reference) -> Result<(Vec<u8>, String), PkgError> {
        let repo = &reference.repository;
        let resp = self
            .call(
                Method::GET,
                &format!("/v2/{repo}/manifests/{}", reference.reference()?),
                &[("accept", MANIFEST_MEDIA_TYPE.to_owned())],
                Bytes::new(),
                MAX_MANIFEST,
                &Self::pull_scope(repo),
            )
            .await?;
        if resp.status == StatusCode::NOT_FOUND {
            let detail = registry_error(&resp.body).unwrap_or_else(|| "not found".into());
            let sep = if reference.digest.is_some() { '@' } else { ':' };
            return Err(PkgError::Registry(format!(
                "the registry {} has no package {}{sep}{}: {detail}; hint: check the name and version (`kazi pkg add {}/{}` picks the newest version)",
                self.registry,
                reference.repository,
                reference.reference()?,
                self.registry,
                reference.repository
            )));
        }
        if !resp.status.is_success() {
            return Err(self.status_error(&format!("a request for {reference}"), &resp));
        }
        let digest = sha256_digest(&resp.body);
        if let Some(pinned) = &reference.digest
            && pinned != &digest
        {
            return Err(PkgError::Digest {
                what: format!("the manifest of {reference}"),
                expected: pinned.clone(),
                found: digest,
            });
        }
        Ok((resp.body.to_vec(), digest))
    }

    /// Store an image manifest under `tag`; returns its digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        tag: &str,
        bytes: &[u8],
    ) -> Result<String, PkgError> {
        let resp = self
            .call(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("content-type", MANIFEST_MEDIA_TYPE.to_owned())],
                Bytes::copy_from_slice(bytes),
                MAX_SMALL,
                &Self::push_scope(repo),
            )
            .await?;
        if resp.status != StatusCode::CREATED {
            return Err(self.status_error(&format!("the manifest for {repo}:{tag}"), &resp));
        }
        Ok(sha256_digest(bytes))
    }

    /// The tags of a repository (following `Link: <…>; rel="next"` pages).
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>, PkgError> {
        let mut all = Vec::new();
        let mut next = Some(format!("/v2/{repo}/tags/list"));
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            if pages > 100 {
                break;
            }
            let (tags, link) = self.tags_page(repo, &path).await?;
            all.extend(tags);
            next = link;
        }
        Ok(all)
    }

    async fn tags_page(
        &self,
        repo: &str,
        path: &str,
    ) -> Result<(Vec<String>, Option<String>), PkgError> {
        let resp = self
            .call(
                Method::GET,
                path,
                &[],
                Bytes::new(),
                MAX_MANIFEST,
                &Self::pull_scope(repo),
            )
            .await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Err(PkgError::Registry(format!(
                "the registry {} has no package {repo}; hint: check the name",
                self.registry
            )));
        }
        if !resp.status.is_success() {
            return Err(self.status_error(&format!("the tag list of {repo}"), &resp));
        }
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let t: Tags = serde_json::from_slice(&resp.body).map_err(|e| {
            PkgError::Registry(format!(
                "the registry {} sent an unreadable tag list for {repo}: {e}",
                self.registry
            ))
        })?;
        let next = resp.header("link").and_then(next_link);
        Ok((t.tags.unwrap_or_default(), next))
    }

    /// Publish `package` at `reference`: the component and config blobs, then the
    /// manifest that carries the kazi manifest and signature. Returns the manifest digest.
    pub async fn publish(
        &self,
        reference: &Reference,
        package: &Package,
        component: WasmComponent,
    ) -> Result<String, PkgError> {
        let repo = &reference.repository;
        let tag = reference.tag.as_deref().ok_or_else(|| {
            PkgError::Registry(format!("`{reference}` names no tag; hint: add `:VERSION`"))
        })?;
        let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let layer_digest = self.push_blob(repo, &package.component).await?;
        let config = WasmConfig {
            created: created.clone(),
            author: None,
            architecture: "wasm".into(),
            os: "wasip2".into(),
            layer_digests: vec![layer_digest.clone()],
            component: Some(component),
        };
        let config_bytes = serde_json::to_vec(&config).expect("a config serialises");
        let config_digest = self.push_blob(repo, &config_bytes).await?;
        let m = &package.manifest;
        let mut annotations = BTreeMap::from([
            (
                "org.opencontainers.image.title".to_owned(),
                m.name.to_string(),
            ),
            (
                "org.opencontainers.image.version".to_owned(),
                m.version.to_string(),
            ),
            (
                "org.opencontainers.image.description".to_owned(),
                m.description.clone(),
            ),
            (
                "org.opencontainers.image.licenses".to_owned(),
                m.license.clone(),
            ),
            ("org.opencontainers.image.created".to_owned(), created),
            (
                KAZI_MANIFEST_ANNOTATION.to_owned(),
                package.manifest_text.clone(),
            ),
        ]);
        if let Some(r) = &m.repository {
            annotations.insert("org.opencontainers.image.source".to_owned(), r.clone());
        }
        if let Some(sig) = &package.signature {
            annotations.insert(KAZI_SIGNATURE_ANNOTATION.to_owned(), sig.to_text());
        }
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.to_owned()),
            config: Descriptor {
                media_type: WASM_CONFIG_MEDIA_TYPE.to_owned(),
                digest: config_digest,
                size: config_bytes.len() as u64,
                annotations: None,
            },
            layers: vec![Descriptor {
                media_type: WASM_LAYER_MEDIA_TYPE.to_owned(),
                digest: layer_digest,
                size: package.component.len() as u64,
                annotations: None,
            }],
            annotations,
        };
        let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        self.put_manifest(repo, tag, &bytes).await
    }

    /// Pull the package at `reference`, checking that it is a kazi package, that the
    /// component hashes to the digest in both the image manifest and the kazi manifest.
    /// The signature is returned unchecked (see `install`).
    pub async fn pull(&self, reference: &Reference) -> Result<Package, PkgError> {
        let (bytes, _digest) = self.get_manifest(reference).await?;
        let not_kazi = |why: &str| {
            PkgError::Registry(format!(
                "{reference} is not a kazi package: {why}; hint: publish packages with `kazi pkg publish`"
            ))
        };
        let image: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| not_kazi(&format!("its manifest is not an OCI image manifest ({e})")))?;
        if image.config.media_type != WASM_CONFIG_MEDIA_TYPE {
            return Err(not_kazi(&format!(
                "its config is `{}`, not a WebAssembly artifact",
                image.config.media_type
            )));
        }
        let layers: Vec<&Descriptor> = image
            .layers
            .iter()
            .filter(|l| l.media_type == WASM_LAYER_MEDIA_TYPE)
            .collect();
        let [layer] = layers.as_slice() else {
            return Err(not_kazi(&format!(
                "it has {} `application/wasm` layers, not one",
                layers.len()
            )));
        };
        let text = image
            .annotations
            .get(KAZI_MANIFEST_ANNOTATION)
            .ok_or_else(|| not_kazi("it carries no kazi-package.toml (a plain wasm component)"))?;
        let manifest = Manifest::parse(&format!("the manifest of {reference}"), text)?;
        if manifest.component.digest != layer.digest {
            return Err(PkgError::Digest {
                what: format!("the component layer of {reference}"),
                expected: manifest.component.digest.clone(),
                found: layer.digest.clone(),
            });
        }
        let signature = image
            .annotations
            .get(KAZI_SIGNATURE_ANNOTATION)
            .map(|t| Signature::parse(&reference.to_string(), t))
            .transpose()?;
        let component = self
            .get_blob(
                &reference.repository,
                &layer.digest,
                &format!("the component of {reference}"),
            )
            .await?;
        Ok(Package {
            manifest,
            manifest_text: text.clone(),
            component,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_registry_tag_and_digest() {
        let r: Reference = "127.0.0.1:5000/acme/no-todo:1.2.0".parse().unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "acme/no-todo");
        assert_eq!(r.tag.as_deref(), Some("1.2.0"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/acme/no-todo:1.2.0");
        let r: Reference = "oci://ghcr.io/acme/kazi/cov".parse().unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_deref()),
            ("acme/kazi/cov", None)
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r: Reference = format!("localhost/x@{d}").parse().unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
    }

    #[test]
    fn bad_references_say_what_to_write() {
        for bad in [
            "acme/x:1.0.0",
            "x",
            "ghcr.io/Acme/x:1",
            "ghcr.io/a/x:1.0.0+b",
            "ghcr.io/a@sha256:12",
        ] {
            let e = bad.parse::<Reference>().unwrap_err();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
        let e = "acme/x:1.0.0".parse::<Reference>().unwrap_err();
        assert!(e.contains("REGISTRY/NAMESPACE/NAME"), "{e}");
    }

    #[test]
    fn docker_config_auths_are_read() {
        let cfg = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dTpw"},
            "127.0.0.1:5000": {"auth": "YWxpY2U6czNjcjN0"},
            "ghcr.io": {"username": "bob", "password": "tok"}
        }, "credsStore": "desktop"}"#;
        let c = docker_config_credentials(cfg, "127.0.0.1:5000")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cr3t")
        );
        let c = docker_config_credentials(cfg, "docker.io")
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "u");
        let c = docker_config_credentials(cfg, "ghcr.io").unwrap().unwrap();
        assert_eq!(c.password, "tok");
        assert_eq!(docker_config_credentials(cfg, "quay.io").unwrap(), None);
        assert!(docker_config_credentials(r#"{"auths":{"h.io":{"auth":"!!"}}}"#, "h.io").is_err());
        assert_eq!(format!("{c:?}"), "Credentials(bob, ***)");
    }

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
        assert_eq!(
            next_link("</v2/a/tags/list?last=b&n=2>; rel=\"next\"").as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(next_link("</x>; rel=\"prev\""), None);
    }
}
