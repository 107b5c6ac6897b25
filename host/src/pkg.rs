//! Shared packages: a predicate (or profile) component plus its manifest
//! (`kazi-package.toml`: name, version, world, requested capabilities, config schema).
//!
//! The life of a package: `kazi pkg init` writes the few lines of `kazi-package.toml`
//! the component cannot say itself ([`init`]); `kazi pkg build` takes the rest from the
//! component and refuses a manifest that contradicts it ([`build`], [`component`]);
//! `kazi pkg sign` signs the manifest digest (which covers the component digest) with
//! an ed25519 key; `kazi pkg publish` pushes both to an OCI registry as a WebAssembly
//! artifact; `kazi pkg add` pulls, verifies digests and the signature against the
//! local trust store, shows what the package asks for, stores it content-addressed and
//! pins it in the workspace's `kazi.lock`. Goals then name it (`use = "acme:x@^1"`)
//! and resolve it only through that lock, re-hashing the stored bytes on every load.
//!
//! The registry protocol is [`oci`]; signing and publishing a built package
//! [`publish`]; what `add`, `remove`, `verify` and `update` decide for a workspace
//! [`workspace`] (the person in the loop behind its `Ui` trait).

pub mod build;
pub mod component;
mod http;
pub mod init;
pub mod install;
pub mod lock;
pub mod manifest;
pub mod oci;
pub mod publish;
pub mod sign;
pub mod store;
pub mod workspace;

use std::path::{Path, PathBuf};

pub use lock::{LOCK_FILE, LockedPackage};
pub use manifest::{Capabilities, Kind, MANIFEST_FILE, Manifest, PackageName};

/// Where kazi keeps installed packages: `$KAZI_DATA`, else `kazi` in the platform
/// data directory (`~/.local/share/kazi` on Linux).
pub fn data_dir() -> PathBuf {
    match std::env::var_os("KAZI_DATA").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => dirs::data_dir()
            .map(|d| d.join("kazi"))
            .unwrap_or_else(|| PathBuf::from(".kazi")),
    }
}

/// Where kazi keeps signing keys and the trusted keys: `$KAZI_CONFIG`, else `kazi`
/// in the platform config directory (`~/.config/kazi` on Linux).
pub fn config_dir() -> PathBuf {
    match std::env::var_os("KAZI_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => dirs::config_dir()
            .map(|d| d.join("kazi"))
            .unwrap_or_else(|| PathBuf::from(".kazi")),
    }
}

/// Why a package operation failed. Every message reads after "failed to …" in spirit,
/// names what it is about, and ends with a hint where there is a next step.
#[derive(Debug, thiserror::Error)]
pub enum PkgError {
    /// A file could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A manifest that cannot be used.
    #[error("{}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    /// cargo did not build the one component to package.
    #[error(transparent)]
    Cargo(#[from] build::CargoError),
    /// The component does not load as a package of this kind.
    #[error("{source}")]
    Load {
        what: Kind,
        #[source]
        source: crate::sandbox::SandboxError,
    },
    /// The component says something about itself a package cannot carry.
    #[error("{}: {problem}", component.display())]
    Describe { component: PathBuf, problem: String },
    /// The component contradicts the manifest being built.
    #[error(
        "{} does not agree with {}:\n{}\nhint: a key kazi can read from the component need not be in the manifest: remove it, or change the component so that they say the same, then build again",
        component.display(),
        manifest.display(),
        component::bullets(problems)
    )]
    Mismatch {
        component: PathBuf,
        manifest: PathBuf,
        problems: Vec<component::Mismatch>,
    },
    /// A published package whose component contradicts its manifest.
    #[error(
        "{title} is inconsistent — its component does not say what its manifest says:\n{}\nhint: do not install it; ask the publisher to rebuild it with `kazi pkg build`",
        component::facts(problems)
    )]
    Inconsistent {
        title: String,
        problems: Vec<component::Mismatch>,
    },
    /// A directory without a built package.
    #[error(
        "{} holds no built package; hint: run `kazi pkg build {}` first",
        path.display(),
        path.display()
    )]
    NotBuilt { path: PathBuf },
    /// Talking to a registry failed (unreachable, refused, unknown name…).
    #[error(transparent)]
    Registry(#[from] oci::RegistryError),
    /// Bytes that do not hash to the digest they were named by.
    #[error(
        "{what} does not match its digest: expected {expected}, got {found}; it was altered after it was published or installed"
    )]
    Digest {
        what: String,
        expected: String,
        found: String,
    },
    /// A signature that does not verify, or a key that cannot be used.
    #[error(transparent)]
    Signature(#[from] sign::SignatureError),
    /// An unsigned package, refused unless allowed.
    #[error(
        "refusing to install {title}: it is not signed, so nothing says who made it; hint: ask the publisher to sign it (`kazi pkg sign`), or pass --allow-unsigned if you have checked it yourself"
    )]
    Unsigned { title: String },
    /// A package signed by a key the user has not trusted, refused unless allowed.
    #[error(
        "refusing to install {title}: it is signed by {key}, which is not in your trusted keys; hint: if you know this key belongs to the publisher, `kazi trust add {key}`; or pass --allow-unsigned"
    )]
    Untrusted { title: String, key: sign::PublicKey },
    /// A `kazi.lock` that does not parse.
    #[error(
        "{} is not a valid kazi.lock: {}; hint: restore it from version control, or remove it and `kazi pkg add` the packages again",
        path.display(),
        source.to_string().trim_end()
    )]
    LockInvalid {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    /// A `kazi.lock` of another format version.
    #[error(
        "{} has lock version {found}, this kazi reads {}; hint: upgrade kazi",
        path.display(),
        lock::LOCK_VERSION
    )]
    LockVersion { path: PathBuf, found: u32 },
    /// Something named by a digest that is not `sha256:` and 64 hex digits.
    #[error("`{digest}` is not a sha256 digest (`sha256:` and 64 hex digits)")]
    BadDigest { digest: String },
    /// `kazi pkg init` cannot write the manifest.
    #[error("cannot write {}: {problem}; hint: {hint}", path.display())]
    Init {
        path: PathBuf,
        problem: String,
        hint: &'static str,
    },
    /// A package reference that is neither a registry reference nor a directory.
    #[error("{source}; or give a path to a built package directory")]
    BadSource {
        #[source]
        source: oci::ReferenceError,
    },
    /// `kazi pkg add` with no reference, and no `kazi.lock`.
    #[error(
        "there is no {} to install from; hint: `kazi pkg add REGISTRY/NAMESPACE/NAME:VERSION`",
        lock.display()
    )]
    NoLock { lock: PathBuf },
    /// A package name that is not in `kazi.lock`.
    #[error("{} has no package {name}; hint: {hint}", lock.display())]
    NotInLock {
        lock: PathBuf,
        name: PackageName,
        hint: &'static str,
    },
    /// A `kazi.lock` entry whose source is not a reference.
    #[error("kazi.lock: {title} has a bad source: {source}")]
    LockedSource {
        title: String,
        #[source]
        source: oci::ReferenceError,
    },
    /// A source that now holds other bytes than `kazi.lock` pins.
    #[error(transparent)]
    Republished(Box<workspace::Republished>),
    /// A reference that holds another package than the one being updated.
    #[error("{reference} holds {found}, not {expected}; hint: check the repository")]
    WrongPackage {
        reference: String,
        found: PackageName,
        expected: PackageName,
    },
    /// `kazi pkg publish` to a digest.
    #[error("publish to a tag, not a digest: `{usual}`")]
    DigestReference { usual: String },
    /// `kazi pkg publish` to a tag that is not the package's version.
    #[error(
        "the tag `{tag}` is not the package's version {version}; hint: publish it as `{usual}`"
    )]
    TagNotVersion {
        tag: String,
        version: String,
        usual: String,
    },
    /// A signature that signs another build than the one being published.
    #[error(
        "the signature in {} does not match this build of {title}; hint: sign it again with `kazi pkg sign {}`",
        dir.display(),
        dir.display()
    )]
    StaleSignature { dir: PathBuf, title: String },
    /// A key name that is not a plain file name.
    #[error("--name `{name}` must be a plain file name")]
    BadKeyName { name: String },
    /// A package the person did not approve.
    #[error("{refusal}: {}", if *no_terminal {
        "stdin is not a terminal, so nobody can approve it; hint: review what it asks for above and pass --yes"
    } else {
        "not approved"
    })]
    NotApproved { refusal: String, no_terminal: bool },
}

impl PkgError {
    /// An I/O error naming its path.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        PkgError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// Write `bytes` to `path` atomically (a temp file in the same directory, then rename),
/// creating the directory; the file gets permissions `mode`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkgError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| PkgError::io("create", dir, e))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| PkgError::io("write", dir, e))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(|e| PkgError::io("write", path, e))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| PkgError::io("write", path, e))?;
    tmp.persist(path)
        .map_err(|e| PkgError::io("write", path, e.error))?;
    Ok(())
}
