//! The package store: installed components and manifests, content-addressed under the
//! data directory (`packages/sha256/<hex>`). Writes are atomic (temp file + rename of
//! identical content), so two installs at once cannot leave a half-written blob; reads
//! re-hash, so a blob altered on disk is refused, never loaded.

use std::path::{Path, PathBuf};

use super::manifest::sha256_digest;
use super::{PkgError, write_atomically};

/// A content-addressed blob store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("packages"),
        }
    }

    /// The store in the default data directory.
    pub fn open_default() -> Self {
        Self::new(&super::data_dir())
    }

    /// Where the blob with `digest` (`sha256:<hex>`) lives.
    pub fn path(&self, digest: &str) -> Result<PathBuf, PkgError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| PkgError::BadDigest {
                digest: digest.to_owned(),
            })?;
        Ok(self.root.join("sha256").join(hex.to_ascii_lowercase()))
    }

    /// Store `bytes`; returns their digest. Storing what is already there is a no-op.
    pub fn put(&self, bytes: &[u8]) -> Result<String, PkgError> {
        let digest = sha256_digest(bytes);
        let path = self.path(&digest)?;
        if std::fs::read(&path).is_ok_and(|have| have == bytes) {
            return Ok(digest);
        }
        write_atomically(&path, bytes, 0o444)?;
        Ok(digest)
    }

    /// Whether a blob with `digest` is stored (without checking it).
    pub fn contains(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    /// Read the blob `digest`, refusing bytes that do not hash to it. `what` names it
    /// in messages. `Ok(None)` when it is not stored.
    pub fn get(&self, digest: &str, what: &str) -> Result<Option<Vec<u8>>, PkgError> {
        let path = self.path(digest)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PkgError::io("read", &path, e)),
        };
        let found = sha256_digest(&bytes);
        if found != digest {
            return Err(PkgError::Digest {
                what: format!("{what} (stored at {})", path.display()),
                expected: digest.to_owned(),
                found,
            });
        }
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_content_addressed_and_rehashed_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let d = store.put(b"hello").unwrap();
        assert_eq!(d, sha256_digest(b"hello"));
        assert_eq!(store.put(b"hello").unwrap(), d);
        assert!(store.contains(&d));
        assert_eq!(store.get(&d, "x").unwrap().unwrap(), b"hello");
        assert!(store.get(&sha256_digest(b"other"), "x").unwrap().is_none());

        let path = store.path(&d).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&path, b"hellO").unwrap();
        let e = store.get(&d, "the component").unwrap_err();
        assert!(e.to_string().contains("does not match its digest"), "{e}");
        // Storing the real bytes again repairs it.
        store.put(b"hello").unwrap();
        assert!(store.get(&d, "x").unwrap().is_some());
    }

    #[test]
    fn digests_are_checked_before_they_become_paths() {
        let store = Store::new(Path::new("/nowhere"));
        assert!(store.path("sha256:../../etc/passwd").is_err());
        assert!(store.path("md5:00").is_err());
    }
}
