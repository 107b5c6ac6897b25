//! OCI registries: [`reference`]s, [`credentials`], the HTTP [`client`] with Basic and
//! Bearer-token auth, and the parts of the distribution API a package needs (blobs,
//! manifests, tags) with [`transfer`]'s publish and pull on top.
//!
//! A package is a WebAssembly OCI artifact as the CNCF wasm-OCI layout describes it
//! (what `wkg` and `oci-wasm` write): an image manifest whose config has media type
//! `application/vnd.wasm.config.v0+json` and whose one layer is the component
//! (`application/wasm`). The published `kazi-package.toml` and the signature travel
//! in the manifest's annotations, so other wasm tools still see a plain component.

mod client;
mod credentials;
mod reference;
mod transfer;

use std::collections::BTreeMap;

use http::StatusCode;
use serde::{Deserialize, Serialize};

pub use client::Client;
pub use credentials::{Credentials, CredentialsError, credentials};
pub use reference::{Reference, ReferenceError};

use super::http::TransportError;
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

/// Why talking to a registry failed: unreachable, refused, or an answer that is not
/// what a kazi package looks like. Every message names the registry (or reference)
/// and says what to do where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot talk to the registry {registry}: {source}; {hint}")]
    Transport {
        registry: String,
        #[source]
        source: TransportError,
        hint: String,
    },
    #[error(
        "the registry {registry} answered {status} to {what}{}{}",
        detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default(),
        hint.as_ref().map(|h| format!("; hint: {h}")).unwrap_or_default()
    )]
    Status {
        registry: String,
        status: StatusCode,
        what: String,
        /// The registry's own error, summarised.
        detail: Option<String>,
        hint: Option<String>,
    },
    #[error(
        "the registry {registry} wants a login{}; hint: set KAZI_REGISTRY_USERNAME and KAZI_REGISTRY_PASSWORD, or `docker login {registry}`",
        refused.as_ref().map(|u| format!(" and refused the credentials of `{u}`")).unwrap_or_default()
    )]
    LoginNeeded {
        registry: String,
        /// The user whose credentials were refused, if any were sent.
        refused: Option<String>,
    },
    #[error("the registry {registry} redirected more than 5 times")]
    TooManyRedirects { registry: String },
    #[error("the registry {registry} started an upload without a Location")]
    NoUploadLocation { registry: String },
    #[error("the token service of {registry} answered something that is not a token: {source}")]
    BadToken {
        registry: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the token service of {registry} answered no token")]
    NoToken { registry: String },
    #[error(
        "the registry {registry} has no package {name}: {detail}; hint: check the name and version (`kazi pkg add {registry}/{repository}` picks the newest version)"
    )]
    NoSuchVersion {
        registry: String,
        repository: String,
        /// `repository:tag` or `repository@digest`.
        name: String,
        detail: String,
    },
    #[error("the registry {registry} has no package {repository}; hint: check the name")]
    NoSuchPackage {
        registry: String,
        repository: String,
    },
    #[error("the registry {registry} sent an unreadable tag list for {repository}: {source}")]
    BadTagList {
        registry: String,
        repository: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{reference}` names no version; hint: add `:VERSION`")]
    NoVersion { reference: String },
    #[error("`{reference}` names no tag; hint: add `:VERSION`")]
    NoTag { reference: String },
    #[error(
        "{reference} has no version tags (found: {found}); hint: name a tag, `{reference}:VERSION`"
    )]
    NoVersionTags { reference: String, found: String },
    #[error(
        "{reference} holds {title} — the tag and the package version disagree; hint: ask the publisher to fix the tag"
    )]
    TagDisagrees { reference: String, title: String },
    #[error(
        "{reference} is not a kazi package: {why}; hint: publish packages with `kazi pkg publish`"
    )]
    NotKazi { reference: String, why: String },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_read_as_one_sentence_with_a_hint() {
        let e = RegistryError::Status {
            registry: "r.io".into(),
            status: StatusCode::UNAUTHORIZED,
            what: "a download of x".into(),
            detail: Some("UNAUTHORIZED (no)".into()),
            hint: Some("log in".into()),
        };
        assert_eq!(
            e.to_string(),
            "the registry r.io answered 401 Unauthorized to a download of x: UNAUTHORIZED (no); hint: log in"
        );
        let e = RegistryError::Status {
            registry: "r.io".into(),
            status: StatusCode::INTERNAL_SERVER_ERROR,
            what: "x".into(),
            detail: None,
            hint: None,
        };
        assert_eq!(
            e.to_string(),
            "the registry r.io answered 500 Internal Server Error to x"
        );
        let e = RegistryError::LoginNeeded {
            registry: "r.io".into(),
            refused: Some("alice".into()),
        };
        assert!(
            e.to_string().starts_with(
                "the registry r.io wants a login and refused the credentials of `alice`; hint:"
            ),
            "{e}"
        );
    }
}
