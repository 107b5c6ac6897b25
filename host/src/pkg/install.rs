//! Installing: where a package comes from (a registry or a local build), whether its
//! signature is acceptable, whether the component agrees with its manifest, and putting
//! it into the store. The CLI decides what to ask the user; this module decides what
//! is refused no matter what.

use std::path::{Path, PathBuf};

use super::build;
use super::component::{self, Expected};
use super::lock::LockedPackage;
use super::manifest::sha256_digest;
use super::oci::{Client, Package, Reference, RegistryError};
use super::sign::{PublicKey, TrustStore};
use super::store::Store;
use super::{Kind, PkgError};
use crate::sandbox::{Sandbox, Source};

/// Where a package comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A registry reference with a tag or digest.
    Registry {
        reference: Reference,
        insecure: bool,
    },
    /// A built package on disk.
    Local(PathBuf),
}

impl Origin {
    /// How the lock records it.
    pub fn source(&self) -> String {
        match self {
            Origin::Registry { reference, .. } => reference.to_string(),
            Origin::Local(p) => p.display().to_string(),
        }
    }
}

/// The newest version among `tags` that satisfies `req` (and is newer than `after`),
/// ignoring tags that are not semver. Pre-releases only when `req` asks for them.
pub fn newest(
    tags: &[String],
    req: Option<&semver::VersionReq>,
    after: Option<&semver::Version>,
) -> Option<semver::Version> {
    tags.iter()
        .filter_map(|t| t.parse::<semver::Version>().ok())
        .filter(|v| req.is_none_or(|r| r.matches(v)))
        .filter(|v| req.is_some() || v.pre.is_empty())
        .filter(|v| after.is_none_or(|a| v > a))
        .max()
}

/// Pull a package from a registry. Without a tag, the newest semver tag is used.
/// Digests are checked (image manifest, layer, kazi manifest); the signature is not.
pub async fn fetch(reference: &Reference, insecure: bool) -> Result<(Origin, Package), PkgError> {
    let client = Client::new(&reference.registry, insecure)?;
    let reference = if reference.tag.is_none() && reference.digest.is_none() {
        let tags = client.tags(&reference.repository).await?;
        let v = newest(&tags, None, None).ok_or_else(|| RegistryError::NoVersionTags {
            reference: reference.to_string(),
            found: if tags.is_empty() {
                "none".to_owned()
            } else {
                tags.join(", ")
            },
        })?;
        reference.with_tag(&v.to_string())
    } else {
        reference.clone()
    };
    let package = client.pull(&reference).await?;
    if reference.digest.is_none()
        && let Some(tag) = &reference.tag
        && tag
            .parse::<semver::Version>()
            .is_ok_and(|v| v != package.manifest.version)
    {
        return Err(RegistryError::TagDisagrees {
            reference: reference.to_string(),
            title: package.manifest.title(),
        }
        .into());
    }
    Ok((
        Origin::Registry {
            reference,
            insecure,
        },
        package,
    ))
}

/// Read a built package from disk (see [`build::read_built`]).
pub fn fetch_local(path: &Path) -> Result<(Origin, Package), PkgError> {
    let (dir, package) = build::read_built(path)?;
    let dir = dir.canonicalize().unwrap_or(dir);
    Ok((Origin::Local(dir), package))
}

/// Who signed a package, as far as this user is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// A valid signature by a key in the trust store.
    Trusted {
        key: PublicKey,
        name: Option<String>,
    },
    /// A valid signature by a key the user has not trusted.
    Untrusted(PublicKey),
    /// No signature.
    Unsigned,
}

impl Signer {
    /// For people: `signed by ed25519:… (alice)`.
    pub fn describe(&self) -> String {
        match self {
            Signer::Trusted { key, name: Some(n) } => format!("signed by {key} (trusted: {n})"),
            Signer::Trusted { key, name: None } => format!("signed by {key} (trusted)"),
            Signer::Untrusted(key) => format!("signed by {key}, a key you do not trust"),
            Signer::Unsigned => "not signed".to_owned(),
        }
    }

    /// The signing key, trusted or not.
    pub fn key(&self) -> Option<&PublicKey> {
        match self {
            Signer::Trusted { key, .. } | Signer::Untrusted(key) => Some(key),
            Signer::Unsigned => None,
        }
    }
}

/// Check the signature of `package` against the trust store. A signature that does
/// not verify is an error whatever the caller allows.
pub fn check_signature(package: &Package, trust: &TrustStore) -> Result<Signer, PkgError> {
    let Some(sig) = &package.signature else {
        return Ok(Signer::Unsigned);
    };
    sig.verify(&package.manifest, &package.manifest_digest())?;
    Ok(match trust.get(&sig.signer) {
        Some(t) => Signer::Trusted {
            key: t.key.clone(),
            name: t.name.clone(),
        },
        None => Signer::Untrusted(sig.signer.clone()),
    })
}

/// Refuse an unsigned package or one signed by an untrusted key, unless allowed.
pub fn enforce(signer: &Signer, allow_unsigned: bool, title: &str) -> Result<(), PkgError> {
    match signer {
        Signer::Trusted { .. } => Ok(()),
        _ if allow_unsigned => Ok(()),
        Signer::Unsigned => Err(PkgError::Unsigned {
            title: title.to_owned(),
        }),
        Signer::Untrusted(key) => Err(PkgError::Untrusted {
            title: title.to_owned(),
            key: key.clone(),
        }),
    }
}

/// Load the component in the sandbox (which compiles it into the artifact cache) and
/// check that its kind, world, `describe()` name, version and capabilities agree with
/// its manifest.
pub async fn check_component(sandbox: &Sandbox, package: &Package) -> Result<(), PkgError> {
    let m = &package.manifest;
    let source = Source::new(format!("package {}", m.title()), package.component.clone());
    let found = component::inspect(sandbox, &source, Some(m.kind)).await?;
    let expected = Expected {
        namespace: Some(&m.name.namespace),
        name: Some(&m.name.name),
        version: Some(&m.version),
        kind: Some(m.kind),
        world: Some(&m.world),
        capabilities: Some(&m.capabilities),
        config_schema: None,
    };
    let problems = component::compare(&expected, &found);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PkgError::Inconsistent {
            title: m.title(),
            problems,
        })
    }
}

/// Put the component and its manifest into the store and describe the lock entry.
pub fn store(
    store: &Store,
    package: &Package,
    origin: &Origin,
    signer: &Signer,
) -> Result<LockedPackage, PkgError> {
    let digest = store.put(&package.component)?;
    let manifest = store.put(package.manifest_text.as_bytes())?;
    debug_assert_eq!(digest, package.manifest.component.digest);
    let m = &package.manifest;
    let signed = matches!(signer, Signer::Trusted { .. } | Signer::Untrusted(_));
    let (registry, insecure) = match origin {
        Origin::Registry {
            reference,
            insecure,
        } => (Some(reference.registry.clone()), *insecure),
        Origin::Local(_) => (None, false),
    };
    Ok(LockedPackage {
        name: m.name.clone(),
        version: m.version.clone(),
        kind: m.kind,
        registry,
        source: origin.source(),
        insecure,
        digest,
        manifest,
        signer: signed.then(|| signer.key().cloned()).flatten(),
        signature: if signed {
            package.signature.as_ref().map(|s| s.signature.clone())
        } else {
            None
        },
        capabilities: m.capabilities.clone(),
    })
}

/// A package resolved through a lock, ready to load.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub locked: LockedPackage,
    pub source: Source,
}

/// Why a locked package could not be resolved: a message and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveError {
    pub message: String,
    pub hint: Option<String>,
}

/// Resolve `name@req` through `workspace/kazi.lock` and the store: the locked version
/// must satisfy `req`, the stored bytes must hash to the locked digests, and a recorded
/// signature must still verify. Never another version or digest.
pub fn resolve_locked(
    workspace: &Path,
    store: &Store,
    name: &super::PackageName,
    req: &semver::VersionReq,
    kind: Kind,
) -> Result<Resolved, ResolveError> {
    let lock_path = super::lock::path_in(workspace);
    let add_hint = format!(
        "install it with `kazi pkg add REGISTRY/{}/{}:VERSION` in the workspace ({})",
        name.namespace,
        name.name,
        workspace.display()
    );
    let fail = |message: String, hint: Option<String>| ResolveError { message, hint };
    let lock = match super::lock::read(workspace) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Err(fail(
                format!(
                    "package {name} is not installed: there is no {}",
                    lock_path.display()
                ),
                Some(add_hint),
            ));
        }
        Err(e) => return Err(fail(e.to_string(), None)),
    };
    let Some(locked) = lock.get(name) else {
        let have: Vec<String> = lock.packages.iter().map(|p| p.name.to_string()).collect();
        return Err(fail(
            format!(
                "package {name} is not in {} (it has: {})",
                lock_path.display(),
                if have.is_empty() {
                    "nothing".to_owned()
                } else {
                    have.join(", ")
                }
            ),
            Some(add_hint),
        ));
    };
    if locked.kind != kind {
        return Err(fail(
            format!("package {name} is a {}, not a {kind}", locked.kind),
            None,
        ));
    }
    if !req.matches(&locked.version) {
        return Err(fail(
            format!(
                "{} pins {name} {}, which does not satisfy `{req}`",
                lock_path.display(),
                locked.version
            ),
            Some(format!(
                "install a matching version (`kazi pkg add REGISTRY/{}/{}:VERSION` or `kazi pkg update {name} --to VERSION`), or change the requirement in the goal",
                name.namespace, name.name
            )),
        ));
    }
    let title = format!("{name} {}", locked.version);
    let verify_hint = Some(format!(
        "run `kazi pkg verify` in {}; reinstall it with `kazi pkg add {}`",
        workspace.display(),
        locked.source
    ));
    let not_installed = || {
        fail(
            format!(
                "{title} ({}) is in kazi.lock but not installed on this machine",
                locked.digest
            ),
            Some(format!(
                "run `kazi pkg add` in {} to install what kazi.lock records",
                workspace.display()
            )),
        )
    };
    let component = match store.get(&locked.digest, &format!("the component of {title}")) {
        Ok(Some(b)) => b,
        Ok(None) => return Err(not_installed()),
        Err(e) => return Err(fail(e.to_string(), verify_hint)),
    };
    let manifest_text = match store.get(&locked.manifest, &format!("the manifest of {title}")) {
        Ok(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(None) => return Err(not_installed()),
        Err(e) => return Err(fail(e.to_string(), verify_hint)),
    };
    if let Err(problem) = check_locked(locked, &manifest_text) {
        return Err(fail(problem, verify_hint));
    }
    Ok(Resolved {
        locked: locked.clone(),
        source: Source::new(format!("package {title}"), component),
    })
}

/// Check a lock entry against its stored manifest text: same name, version and
/// component digest, and a recorded signature that verifies.
pub fn check_locked(locked: &LockedPackage, manifest_text: &str) -> Result<(), String> {
    let title = format!("{} {}", locked.name, locked.version);
    let m = super::Manifest::parse(&format!("the stored manifest of {title}"), manifest_text)
        .map_err(|e| e.to_string())?;
    if m.name != locked.name || m.version != locked.version || m.component.digest != locked.digest {
        return Err(format!(
            "kazi.lock says {title} ({}), but its stored manifest is {} ({}); kazi.lock was edited by hand or tampered with",
            locked.digest,
            m.title(),
            m.component.digest
        ));
    }
    if let Some(sig) = locked.signature() {
        sig.verify(&m, &sha256_digest(manifest_text.as_bytes()))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn newest_picks_semver_tags_only() {
        let t = tags(&["latest", "1.0.0", "1.2.0", "2.0.0-rc.1", "1.10.0", "0.9.0"]);
        assert_eq!(newest(&t, None, None), Some("1.10.0".parse().unwrap()));
        let req: semver::VersionReq = "^1.0.0".parse().unwrap();
        let cur: semver::Version = "1.10.0".parse().unwrap();
        assert_eq!(newest(&t, Some(&req), Some(&cur)), None);
        let req: semver::VersionReq = ">=2.0.0-rc.1".parse().unwrap();
        assert_eq!(
            newest(&t, Some(&req), None),
            Some("2.0.0-rc.1".parse().unwrap())
        );
        assert_eq!(newest(&tags(&["latest"]), None, None), None);
    }

    #[test]
    fn signature_policy_refuses_with_a_way_forward() {
        let e = enforce(&Signer::Unsigned, false, "acme:x 1.0.0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--allow-unsigned") && e.contains("not signed"),
            "{e}"
        );
        assert!(enforce(&Signer::Unsigned, true, "x").is_ok());
        let key: PublicKey = format!("ed25519:{}", "A".repeat(43) + "=").parse().unwrap();
        let e = enforce(&Signer::Untrusted(key.clone()), false, "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("kazi trust add {key}")), "{e}");
        assert!(enforce(&Signer::Trusted { key, name: None }, false, "x").is_ok());
    }

    #[test]
    fn resolving_without_a_lock_says_how_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let name = "acme:x".parse().unwrap();
        let e = resolve_locked(
            dir.path(),
            &store,
            &name,
            &semver::VersionReq::STAR,
            Kind::Predicate,
        )
        .unwrap_err();
        assert!(e.message.contains("not installed"), "{e:?}");
        assert!(
            e.hint
                .unwrap()
                .contains("`kazi pkg add REGISTRY/acme/x:VERSION` in the workspace")
        );
    }
}
