//! `kazi pkg sign` and `kazi pkg publish` on a built package: what is checked before
//! anything is signed or pushed, and what is worth a word to the author.

use std::fmt;
use std::path::{Path, PathBuf};

use super::build::read_built;
use super::oci::{Client, Package, Reference};
use super::sign::{SIGNATURE_FILE, SecretKey, Signature};
use super::{PkgError, component, write_atomically};

/// A signed package.
#[derive(Debug)]
pub struct Signed {
    pub package: Package,
    pub signature: Signature,
    /// The signature file written.
    pub path: PathBuf,
}

/// Sign the built package in `dir` with the key in `key_path`; writes
/// `signature.toml` next to it.
pub fn sign(dir: &Path, key_path: &Path) -> Result<Signed, PkgError> {
    let key = SecretKey::read(key_path)?;
    let (dir, package) = read_built(dir)?;
    let signature = Signature::create(&key, &package.manifest, &package.manifest_digest());
    let path = dir.join(SIGNATURE_FILE);
    write_atomically(&path, signature.to_text().as_bytes(), 0o644)?;
    Ok(Signed {
        package,
        signature,
        path,
    })
}

/// Something about a publication the author should know, that does not stop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Consumers will need `--allow-unsigned`.
    Unsigned { title: String, dir: PathBuf },
    /// The repository does not end in the package's name.
    UnusualRepository {
        repository: String,
        name: String,
        usual: String,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Unsigned { title, dir } => write!(
                f,
                "{title} is not signed; people will need --allow-unsigned to install it (sign it with `kazi pkg sign {}`)",
                dir.display()
            ),
            Notice::UnusualRepository {
                repository,
                name,
                usual,
            } => write!(
                f,
                "the repository `{repository}` does not end in the package's name `{name}`; `{usual}` is the usual place"
            ),
        }
    }
}

/// A built package checked for publication at a reference.
#[derive(Debug)]
pub struct Publication {
    pub package: Package,
    /// With the tag: the package's version.
    pub reference: Reference,
    pub notices: Vec<Notice>,
}

/// Check the built package in `dir` for publication at `reference`: a tag, if given,
/// must be its version (the default); a signature must sign exactly this build.
pub fn prepare(dir: &Path, mut reference: Reference) -> Result<Publication, PkgError> {
    if reference.digest.is_some() {
        return Err(PkgError::DigestReference {
            usual: format!("{}/{}:VERSION", reference.registry, reference.repository),
        });
    }
    let (_, package) = read_built(dir)?;
    let m = &package.manifest;
    let version = m.version.to_string();
    match &reference.tag {
        None => reference.tag = Some(version.clone()),
        Some(t) if *t == version => {}
        Some(t) => {
            return Err(PkgError::TagNotVersion {
                tag: t.clone(),
                version: version.clone(),
                usual: reference.with_tag(&version).to_string(),
            });
        }
    }
    let mut notices = Vec::new();
    match &package.signature {
        Some(sig) => {
            sig.verify(m, &package.manifest_digest())
                .map_err(|_| PkgError::StaleSignature {
                    dir: dir.to_owned(),
                    title: m.title(),
                })?
        }
        None => notices.push(Notice::Unsigned {
            title: m.title(),
            dir: dir.to_owned(),
        }),
    }
    if reference.repository.rsplit('/').next() != Some(m.name.name.as_str()) {
        notices.push(Notice::UnusualRepository {
            repository: reference.repository.clone(),
            name: m.name.name.clone(),
            usual: format!(
                "{}/{}/{}",
                reference.registry, m.name.namespace, m.name.name
            ),
        });
    }
    Ok(Publication {
        package,
        reference,
        notices,
    })
}

/// Push a prepared publication; returns the image manifest's digest.
pub async fn publish(publication: &Publication, insecure: bool) -> Result<String, PkgError> {
    let interfaces = component::interfaces(&publication.package.component);
    let client = Client::new(&publication.reference.registry, insecure)?;
    client
        .publish(&publication.reference, &publication.package, interfaces)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_say_what_to_do() {
        let n = Notice::Unsigned {
            title: "acme:x 1.0.0".into(),
            dir: PathBuf::from("pkg"),
        };
        assert!(n.to_string().contains("`kazi pkg sign pkg`"), "{n}");
        let n = Notice::UnusualRepository {
            repository: "acme/other".into(),
            name: "x".into(),
            usual: "r.io/acme/x".into(),
        };
        assert!(
            n.to_string().ends_with("`r.io/acme/x` is the usual place"),
            "{n}"
        );
    }

    #[test]
    fn a_digest_reference_is_refused_before_anything_is_read() {
        let r: Reference = format!("r.io/acme/x@sha256:{}", "a".repeat(64))
            .parse()
            .unwrap();
        let e = prepare(Path::new("/nonexistent"), r)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("publish to a tag, not a digest: `r.io/acme/x:VERSION`"),
            "{e}"
        );
    }
}
