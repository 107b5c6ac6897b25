//! The distribution API a package needs (blobs, manifests, tags) and, on top of it,
//! publishing a package as a wasm OCI artifact and pulling one back with every digest
//! checked.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;

use super::client::{self, Client, percent_encode, registry_error};
use super::{
    Descriptor, ImageManifest, KAZI_MANIFEST_ANNOTATION, KAZI_SIGNATURE_ANNOTATION,
    MANIFEST_MEDIA_TYPE, Package, Reference, RegistryError, WASM_CONFIG_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE, WasmComponent, WasmConfig,
};
use crate::pkg::PkgError;
use crate::pkg::http::Response;
use crate::pkg::manifest::{Manifest, sha256_digest};
use crate::pkg::sign::Signature;

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

impl Client {
    fn status_error_pkg(&self, what: &str, resp: &Response) -> PkgError {
        self.status_error(what, resp).into()
    }

    /// Whether the repository has the blob.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool, PkgError> {
        let resp = self
            .call(
                Method::HEAD,
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                Bytes::new(),
                client::MAX_SMALL,
                &Client::push_scope(repo),
            )
            .await?;
        match resp.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error_pkg(&format!("a check for blob {digest}"), &resp)),
        }
    }

    /// Upload a blob (monolithically) unless it is there; returns its digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> Result<String, PkgError> {
        let digest = sha256_digest(bytes);
        if self.blob_exists(repo, &digest).await? {
            return Ok(digest);
        }
        let scope = Client::push_scope(repo);
        let start = self
            .call(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Bytes::new(),
                client::MAX_SMALL,
                &scope,
            )
            .await?;
        if start.status != StatusCode::ACCEPTED {
            return Err(self.status_error_pkg("starting an upload", &start));
        }
        let location = start
            .header("location")
            .ok_or_else(|| RegistryError::NoUploadLocation {
                registry: self.registry().to_owned(),
            })?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", percent_encode(&digest));
        let done = self
            .call(
                Method::PUT,
                &url,
                &[("content-type", "application/octet-stream".to_owned())],
                Bytes::copy_from_slice(bytes),
                client::MAX_SMALL,
                &scope,
            )
            .await?;
        if done.status != StatusCode::CREATED {
            return Err(self.status_error_pkg(&format!("the upload of {digest}"), &done));
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
                client::MAX_BLOB,
                &Client::pull_scope(repo),
            )
            .await?;
        if !resp.status.is_success() {
            return Err(self.status_error_pkg(&format!("a download of {what}"), &resp));
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
                client::MAX_MANIFEST,
                &Client::pull_scope(repo),
            )
            .await?;
        if resp.status == StatusCode::NOT_FOUND {
            let detail = registry_error(&resp.body).unwrap_or_else(|| "not found".into());
            let sep = if reference.digest.is_some() { '@' } else { ':' };
            return Err(RegistryError::NoSuchVersion {
                registry: self.registry().to_owned(),
                repository: reference.repository.clone(),
                name: format!("{}{sep}{}", reference.repository, reference.reference()?),
                detail,
            }
            .into());
        }
        if !resp.status.is_success() {
            return Err(self.status_error_pkg(&format!("a request for {reference}"), &resp));
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
                client::MAX_SMALL,
                &Client::push_scope(repo),
            )
            .await?;
        if resp.status != StatusCode::CREATED {
            return Err(self.status_error_pkg(&format!("the manifest for {repo}:{tag}"), &resp));
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
                client::MAX_MANIFEST,
                &Client::pull_scope(repo),
            )
            .await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Err(RegistryError::NoSuchPackage {
                registry: self.registry().to_owned(),
                repository: repo.to_owned(),
            }
            .into());
        }
        if !resp.status.is_success() {
            return Err(self.status_error_pkg(&format!("the tag list of {repo}"), &resp));
        }
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let t: Tags =
            serde_json::from_slice(&resp.body).map_err(|source| RegistryError::BadTagList {
                registry: self.registry().to_owned(),
                repository: repo.to_owned(),
                source,
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
        let tag = reference
            .tag
            .as_deref()
            .ok_or_else(|| RegistryError::NoTag {
                reference: reference.to_string(),
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
        let not_kazi = |why: &str| -> PkgError {
            RegistryError::NotKazi {
                reference: reference.to_string(),
                why: why.to_owned(),
            }
            .into()
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
    fn next_links_are_followed_and_others_ignored() {
        assert_eq!(
            next_link("</v2/a/tags/list?last=b&n=2>; rel=\"next\"").as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(next_link("</x>; rel=\"prev\""), None);
    }
}
