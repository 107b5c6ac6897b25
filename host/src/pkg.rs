//! Shared packages: a predicate (or profile) component plus its manifest
//! (`kazi-package.toml`: name, version, world, requested capabilities, config schema).
//!
//! The life of a package: `kazi pkg build` checks the component against its manifest;
//! `kazi pkg sign` signs the manifest digest (which covers the component digest) with
//! an ed25519 key; `kazi pkg publish` pushes both to an OCI registry as a WebAssembly
//! artifact; `kazi pkg add` pulls, verifies digests and the signature against the
//! local trust store, shows what the package asks for, stores it content-addressed and
//! pins it in the workspace's `kazi.lock`. Goals then name it (`use = "acme:x@^1"`)
//! and resolve it only through that lock, re-hashing the stored bytes on every load.

pub mod build;
mod http;
pub mod install;
pub mod lock;
pub mod manifest;
pub mod oci;
pub mod sign;
pub mod store;

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
        source: std::io::Error,
    },
    /// A manifest that cannot be used.
    #[error("{}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    /// The component does not build or does not agree with its manifest.
    #[error("{0}")]
    Build(String),
    /// Talking to a registry failed (unreachable, refused, unknown name…).
    #[error("{0}")]
    Registry(String),
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
    #[error("{0}")]
    Signature(String),
    /// Refused by policy (unsigned, untrusted, not approved).
    #[error("{0}")]
    Refused(String),
    /// A `kazi.lock` that cannot be read or does not hold what is asked for.
    #[error("{0}")]
    Lock(String),
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
