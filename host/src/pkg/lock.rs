//! `kazi.lock`: the packages a workspace uses, each pinned by name, version, source,
//! digest, signer and the capabilities the user approved. Goals resolve packages only
//! through it. Updates take an exclusive lock on the workspace directory and replace
//! the file atomically, so concurrent `kazi pkg` commands never lose or tear an entry.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::{Capabilities, Kind, PackageName};
use super::sign::{PublicKey, Signature};
use super::{PkgError, write_atomically};

/// The lock file's name, in the workspace root.
pub const LOCK_FILE: &str = "kazi.lock";
/// The lock format this kazi reads and writes.
pub const LOCK_VERSION: u32 = 1;

const HEADER: &str = "# kazi.lock: the packages this workspace uses, pinned by digest.\n\
# Written by `kazi pkg add|update|remove`; commit it. Goals resolve packages only through it.\n";

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    pub name: PackageName,
    pub version: semver::Version,
    pub kind: Kind,
    /// The registry it came from (`host[:port]`); absent for a local package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Where it came from: `registry/repository:tag`, or a local path.
    pub source: String,
    /// Fetched over plain HTTP (`--insecure`); the digests still protect it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// `sha256:` of the component.
    pub digest: String,
    /// `sha256:` of the published manifest that came with it.
    pub manifest: String,
    /// The key that signed it; absent when installed with `--allow-unsigned`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<PublicKey>,
    /// The signature over the manifest digest (base64), to re-check offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// What it asks for, as approved at install.
    #[serde(default, skip_serializing_if = "Capabilities::is_empty")]
    pub capabilities: Capabilities,
}

impl LockedPackage {
    /// The recorded signature, if it was signed.
    pub fn signature(&self) -> Option<Signature> {
        Some(Signature {
            signer: self.signer.clone()?,
            signature: self.signature.clone()?,
            manifest: self.manifest.clone(),
        })
    }
}

/// The whole lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub version: u32,
    #[serde(default, rename = "package", skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<LockedPackage>,
}

impl Default for LockFile {
    fn default() -> Self {
        Self {
            version: LOCK_VERSION,
            packages: Vec::new(),
        }
    }
}

impl LockFile {
    /// The entry for `name`.
    pub fn get(&self, name: &PackageName) -> Option<&LockedPackage> {
        self.packages.iter().find(|p| &p.name == name)
    }

    /// Insert or replace the entry for `p.name`, keeping the list sorted.
    pub fn upsert(&mut self, p: LockedPackage) {
        self.packages.retain(|q| q.name != p.name);
        self.packages.push(p);
        self.packages.sort_by(|a, b| a.name.cmp(&b.name));
    }

    fn to_text(&self) -> String {
        format!(
            "{HEADER}{}",
            toml::to_string(self).expect("a lock file serialises")
        )
    }
}

/// `workspace/kazi.lock`.
pub fn path_in(workspace: &Path) -> PathBuf {
    workspace.join(LOCK_FILE)
}

/// Read the lock of `workspace`; `None` when there is none.
pub fn read(workspace: &Path) -> Result<Option<LockFile>, PkgError> {
    let path = path_in(workspace);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PkgError::io("read", &path, e)),
    };
    let lock: LockFile = toml::from_str(&text).map_err(|source| PkgError::LockInvalid {
        path: path.clone(),
        source,
    })?;
    if lock.version != LOCK_VERSION {
        return Err(PkgError::LockVersion {
            path,
            found: lock.version,
        });
    }
    Ok(Some(lock))
}

/// Change the lock of `workspace` under an exclusive lock on the workspace directory:
/// read it (empty if missing), apply `f`, write it back atomically. Concurrent callers
/// wait for each other, so none loses another's entry.
pub fn update<T>(
    workspace: &Path,
    f: impl FnOnce(&mut LockFile) -> Result<T, PkgError>,
) -> Result<T, PkgError> {
    let dir = File::open(workspace).map_err(|e| PkgError::io("open", workspace, e))?;
    dir.lock().map_err(|e| PkgError::io("lock", workspace, e))?;
    let mut lock = read(workspace)?.unwrap_or_default();
    let out = f(&mut lock)?;
    write_atomically(&path_in(workspace), lock.to_text().as_bytes(), 0o644)?;
    drop(dir);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> LockedPackage {
        LockedPackage {
            name: name.parse().unwrap(),
            version: semver::Version::new(1, 0, 0),
            kind: Kind::Predicate,
            registry: Some("127.0.0.1:5000".into()),
            source: format!("127.0.0.1:5000/{}:1.0.0", name.replace(':', "/")),
            insecure: true,
            digest: format!("sha256:{}", "a".repeat(64)),
            manifest: format!("sha256:{}", "b".repeat(64)),
            signer: None,
            signature: None,
            capabilities: Capabilities {
                exec: ["git".to_owned()].into(),
                ..Capabilities::default()
            },
        }
    }

    #[test]
    fn lock_round_trips_sorted() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        update(dir.path(), |l| {
            l.upsert(entry("zed:z"));
            l.upsert(entry("acme:a"));
            Ok(())
        })
        .unwrap();
        let lock = read(dir.path()).unwrap().unwrap();
        let names: Vec<String> = lock.packages.iter().map(|p| p.name.to_string()).collect();
        assert_eq!(names, ["acme:a", "zed:z"]);
        let text = std::fs::read_to_string(path_in(dir.path())).unwrap();
        assert!(text.starts_with("# kazi.lock"), "{text}");
        assert!(text.contains("[package.capabilities]"), "{text}");
        update(dir.path(), |l| {
            l.upsert(LockedPackage {
                version: semver::Version::new(2, 0, 0),
                ..entry("acme:a")
            });
            Ok(())
        })
        .unwrap();
        let lock = read(dir.path()).unwrap().unwrap();
        assert_eq!(lock.packages.len(), 2);
        assert_eq!(
            lock.get(&"acme:a".parse().unwrap()).unwrap().version.major,
            2
        );
    }

    #[test]
    fn concurrent_updates_keep_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|s| {
            for i in 0..8 {
                let ws = dir.path();
                s.spawn(move || {
                    update(ws, |l| {
                        l.upsert(entry(&format!("acme:p{i}")));
                        Ok(())
                    })
                    .unwrap()
                });
            }
        });
        assert_eq!(read(dir.path()).unwrap().unwrap().packages.len(), 8);
    }

    #[test]
    fn a_broken_lock_says_how_to_recover() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path_in(dir.path()), "version = 1\n[[package]]\nname = 3\n").unwrap();
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("not a valid kazi.lock") && e.contains("hint:"),
            "{e}"
        );
    }
}
