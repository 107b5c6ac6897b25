//! The packages of a workspace (`kazi pkg add | remove | verify | update`): what each
//! command decides, with the person in the loop behind [`Ui`]. The CLI parses
//! arguments, implements [`Ui`] on the terminal and prints what these return.

use std::path::Path;

use super::PkgError;
use super::install::{self, Origin, Signer};
use super::lock::{self, LockedPackage};
use super::manifest::{Capabilities, PackageName};
use super::oci::{Client, Package, Reference, ReferenceError};
use super::sign::TrustStore;
use super::store::Store;
use crate::sandbox::Sandbox;

/// Something a person may want to know while a command runs.
#[derive(Debug)]
pub enum Event<'a> {
    /// Downloading (or reading) a package from `source`.
    Fetching { source: &'a str },
    /// `title` (`acme:x 1.0.0`) is the newest compatible version already.
    UpToDate { title: &'a str },
    /// `title` came from a directory, which `update` cannot look into.
    LocalSource { title: &'a str, source: &'a str },
    /// `old_title` was moved to `version`; `added` is what it asks for beyond before.
    Updated {
        name: &'a PackageName,
        old_title: &'a str,
        version: &'a semver::Version,
        added: &'a Capabilities,
    },
}

/// A package shown to a person before it is installed.
#[derive(Debug)]
pub struct Review<'a> {
    pub package: &'a Package,
    pub origin: &'a Origin,
    pub signer: &'a Signer,
    /// What else to say: what it replaces, what it asks for anew, a changed signer.
    pub notes: Vec<String>,
    /// When set, the person must approve; otherwise the package is only shown.
    pub approval: Option<Approval>,
}

/// A question that stops the command unless the answer is yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// `install acme:x 1.0.0?`
    pub question: String,
    /// What is refused without approval: `refusing to install acme:x 1.0.0`.
    pub refusal: String,
}

/// How a command talks to the person running it.
pub trait Ui {
    /// Tell them what is happening.
    fn event(&mut self, event: Event<'_>);
    /// Show a package; when it needs approval, ask, and return
    /// [`PkgError::NotApproved`] unless they say yes.
    fn review(&mut self, review: &Review<'_>) -> Result<(), PkgError>;
}

/// What a command needs besides its arguments.
pub struct Context<'a> {
    pub sandbox: &'a Sandbox,
    pub store: Store,
    pub trust: TrustStore,
}

/// How far to trust what is fetched.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Talk plain HTTP to registries.
    pub insecure: bool,
    /// Accept unsigned packages and signatures by keys the user has not trusted.
    pub allow_unsigned: bool,
}

/// Where `kazi pkg add REF` gets a package: a built package directory when REF is
/// a path that exists or starts with `/`, `./` or `../`; otherwise a registry.
pub async fn fetch(reference: &str, insecure: bool) -> Result<(Origin, Package), PkgError> {
    let path = Path::new(reference);
    let looks_local = path.exists()
        || reference.starts_with("./")
        || reference.starts_with("../")
        || reference.starts_with('/');
    if looks_local {
        return install::fetch_local(path);
    }
    let r: Reference = reference
        .parse()
        .map_err(|source| PkgError::BadSource { source })?;
    install::fetch(&r, insecure).await
}

/// Check `package` (signature against the trust store and `policy`, component against
/// its manifest) before anyone is asked about it.
async fn vet(
    cx: &Context<'_>,
    package: &Package,
    policy: Policy,
    title: &str,
) -> Result<Signer, PkgError> {
    let signer = install::check_signature(package, &cx.trust)?;
    install::enforce(&signer, policy.allow_unsigned, title)?;
    install::check_component(cx.sandbox, package).await?;
    Ok(signer)
}

/// The approval to install `title`.
fn install_approval(title: &str) -> Approval {
    Approval {
        question: format!("install {title}?"),
        refusal: format!("refusing to install {title} without approval"),
    }
}

/// `kazi pkg add REF`: fetch, vet, show and ask, store, and pin in `workspace`'s
/// `kazi.lock`. Returns the lock entry.
pub async fn add(
    cx: &Context<'_>,
    workspace: &Path,
    reference: &str,
    policy: Policy,
    ui: &mut dyn Ui,
) -> Result<LockedPackage, PkgError> {
    ui.event(Event::Fetching { source: reference });
    let (origin, package) = fetch(reference, policy.insecure).await?;
    let m = &package.manifest;
    let title = m.title();
    let signer = vet(cx, &package, policy, &title).await?;
    let previous = lock::read(workspace)?.and_then(|l| l.get(&m.name).cloned());
    let mut notes = Vec::new();
    if let Some(p) = &previous {
        notes.push(format!("replaces {} {} in kazi.lock", p.name, p.version));
        let added = m.capabilities.added_to(&p.capabilities);
        if !added.is_empty() {
            notes.push(format!(
                "new compared with {}: {}",
                p.version,
                added.lines().join("; ")
            ));
        }
    }
    ui.review(&Review {
        package: &package,
        origin: &origin,
        signer: &signer,
        notes,
        approval: Some(install_approval(&title)),
    })?;
    let entry = install::store(&cx.store, &package, &origin, &signer)?;
    lock::update(workspace, |l| {
        l.upsert(entry.clone());
        Ok(())
    })?;
    Ok(entry)
}

/// What `kazi pkg add` with no reference did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    pub installed: usize,
    pub present: usize,
}

/// `kazi pkg add` with no reference: install exactly what `kazi.lock` records (a
/// fresh clone). A source that now holds other bytes than the lock pins is refused.
pub async fn sync(
    cx: &Context<'_>,
    workspace: &Path,
    policy: Policy,
    ui: &mut dyn Ui,
) -> Result<Synced, PkgError> {
    let lock = lock::read(workspace)?.ok_or_else(|| PkgError::NoLock {
        lock: lock::path_in(workspace),
    })?;
    let mut installed = 0;
    for entry in &lock.packages {
        let title = format!("{} {}", entry.name, entry.version);
        if is_installed(&cx.store, entry, &title) {
            continue;
        }
        ui.event(Event::Fetching {
            source: &entry.source,
        });
        let (origin, package) = match &entry.registry {
            Some(_) => {
                let r: Reference = entry.source.parse().map_err(|source: ReferenceError| {
                    PkgError::LockedSource {
                        title: title.clone(),
                        source,
                    }
                })?;
                install::fetch(&r, entry.insecure || policy.insecure).await?
            }
            None => install::fetch_local(Path::new(&entry.source))?,
        };
        if package.manifest.component.digest != entry.digest
            || package.manifest_digest() != entry.manifest
        {
            return Err(PkgError::Republished(Box::new(Republished {
                from: entry.source.clone(),
                found: package.manifest.title(),
                found_digest: package.manifest.component.digest.clone(),
                locked: title,
                locked_digest: entry.digest.clone(),
                name: entry.name.clone(),
            })));
        }
        let signer = vet(cx, &package, policy, &title).await?;
        ui.review(&Review {
            package: &package,
            origin: &origin,
            signer: &signer,
            notes: Vec::new(),
            approval: Some(install_approval(&title)),
        })?;
        install::store(&cx.store, &package, &origin, &signer)?;
        installed += 1;
    }
    Ok(Synced {
        installed,
        present: lock.packages.len() - installed,
    })
}

/// A source that now holds other bytes than `kazi.lock` pins.
#[derive(Debug, thiserror::Error)]
#[error(
    "{from} now holds {found} ({found_digest}), but kazi.lock pins {locked} ({locked_digest}); it was re-published or altered; hint: `kazi pkg update {name}` to review the new one"
)]
pub struct Republished {
    /// The source the lock records.
    pub from: String,
    pub found: String,
    pub found_digest: String,
    pub locked: String,
    pub locked_digest: String,
    pub name: PackageName,
}

/// Whether the store holds `entry`'s component and a manifest that matches it.
fn is_installed(store: &Store, entry: &LockedPackage, title: &str) -> bool {
    store.get(&entry.digest, title).ok().flatten().is_some()
        && store
            .get(&entry.manifest, title)
            .ok()
            .flatten()
            .is_some_and(|t| install::check_locked(entry, &String::from_utf8_lossy(&t)).is_ok())
}

/// `kazi pkg remove NAME`: drop it from `kazi.lock` (its blobs stay in the store).
pub fn remove(workspace: &Path, name: &PackageName) -> Result<(), PkgError> {
    let removed = lock::update(workspace, |l| {
        let before = l.packages.len();
        l.packages.retain(|p| &p.name != name);
        Ok(before != l.packages.len())
    })?;
    if removed {
        Ok(())
    } else {
        Err(PkgError::NotInLock {
            lock: lock::path_in(workspace),
            name: name.clone(),
            hint: "`kazi pkg list` shows what it has",
        })
    }
}

/// How one locked package stands on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Stored bytes match the lock; `signer` says how its signature stands.
    Intact { signer: SignerState },
    /// Not in the store (a fresh clone): `kazi pkg add` installs it.
    Missing,
    /// Stored bytes or manifest do not match the lock, or its signature fails.
    Altered { why: String },
}

/// A locked package's signature, as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerState {
    Verified,
    /// It verifies, but the key is no longer in the trust store.
    NoLongerTrusted(super::sign::PublicKey),
    Unsigned,
}

/// `kazi pkg verify`: re-hash every package of `kazi.lock` in the store and re-check
/// its signature.
pub fn verify(
    workspace: &Path,
    store: &Store,
    trust: &TrustStore,
) -> Result<Vec<(LockedPackage, Health)>, PkgError> {
    let packages = lock::read(workspace)?.unwrap_or_default().packages;
    Ok(packages
        .into_iter()
        .map(|p| {
            let health = health(&p, store, trust);
            (p, health)
        })
        .collect())
}

fn health(p: &LockedPackage, store: &Store, trust: &TrustStore) -> Health {
    let title = format!("{} {}", p.name, p.version);
    let component = store.get(&p.digest, &format!("the component of {title}"));
    let manifest = store.get(&p.manifest, &format!("the manifest of {title}"));
    match (component, manifest) {
        (Err(e), _) | (_, Err(e)) => Health::Altered { why: e.to_string() },
        (Ok(None), _) | (_, Ok(None)) => Health::Missing,
        (Ok(Some(_)), Ok(Some(text))) => {
            match install::check_locked(p, &String::from_utf8_lossy(&text)) {
                Err(why) => Health::Altered { why },
                Ok(()) => Health::Intact {
                    signer: match &p.signer {
                        Some(k) if trust.get(k).is_none() => {
                            SignerState::NoLongerTrusted(k.clone())
                        }
                        Some(_) => SignerState::Verified,
                        None => SignerState::Unsigned,
                    },
                },
            }
        }
    }
}

/// What to update.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    /// Only this package.
    pub only: Option<PackageName>,
    /// Exactly this version (with `only`), even across a major version.
    pub to: Option<semver::Version>,
}

/// `kazi pkg update`: move packages from a registry to their newest compatible
/// version (`^current`), or exactly `to`. A version that asks for new capabilities or
/// is signed by another key needs approval; others are shown and installed. Returns
/// how many were updated.
pub async fn update(
    cx: &Context<'_>,
    workspace: &Path,
    request: &UpdateRequest,
    policy: Policy,
    ui: &mut dyn Ui,
) -> Result<usize, PkgError> {
    let lock_file = lock::read(workspace)?.unwrap_or_default();
    if let Some(n) = &request.only
        && lock_file.get(n).is_none()
    {
        return Err(PkgError::NotInLock {
            lock: lock::path_in(workspace),
            name: n.clone(),
            hint: "`kazi pkg add` it first",
        });
    }
    let mut changed = 0;
    for old in &lock_file.packages {
        if request.only.as_ref().is_some_and(|n| n != &old.name) {
            continue;
        }
        let old_title = format!("{} {}", old.name, old.version);
        if old.registry.is_none() {
            ui.event(Event::LocalSource {
                title: &old_title,
                source: &old.source,
            });
            continue;
        }
        let source: Reference =
            old.source
                .parse()
                .map_err(|source: ReferenceError| PkgError::LockedSource {
                    title: old_title.clone(),
                    source,
                })?;
        let target = match &request.to {
            Some(v) => v.clone(),
            None => {
                let client = Client::new(&source.registry, old.insecure)?;
                let tags = client.tags(&source.repository).await?;
                let req = semver::VersionReq::parse(&format!("^{}", old.version))
                    .expect("a version makes a requirement");
                match install::newest(&tags, Some(&req), Some(&old.version)) {
                    Some(v) => v,
                    None => {
                        ui.event(Event::UpToDate { title: &old_title });
                        continue;
                    }
                }
            }
        };
        if target == old.version {
            ui.event(Event::UpToDate { title: &old_title });
            continue;
        }
        let reference = source.with_tag(&target.to_string());
        let shown = reference.to_string();
        ui.event(Event::Fetching { source: &shown });
        let (origin, package) = install::fetch(&reference, old.insecure).await?;
        let m = &package.manifest;
        if m.name != old.name {
            return Err(PkgError::WrongPackage {
                reference: shown,
                found: m.name.clone(),
                expected: old.name.clone(),
            });
        }
        let title = m.title();
        let signer = vet(cx, &package, policy, &title).await?;
        let added = m.capabilities.added_to(&old.capabilities);
        let new_signer = signer.key() != old.signer.as_ref();
        let review = update_review(old, &title, &added, new_signer);
        ui.review(&Review {
            package: &package,
            origin: &origin,
            signer: &signer,
            notes: review.0,
            approval: review.1,
        })?;
        let entry = install::store(&cx.store, &package, &origin, &signer)?;
        lock::update(workspace, |l| {
            l.upsert(entry.clone());
            Ok(())
        })?;
        ui.event(Event::Updated {
            name: &m.name,
            old_title: &old_title,
            version: &m.version,
            added: &added,
        });
        changed += 1;
    }
    Ok(changed)
}

/// The notes shown for an update of `old` to `title`, and the approval it needs: new
/// capabilities or another signer need one.
fn update_review(
    old: &LockedPackage,
    title: &str,
    added: &Capabilities,
    new_signer: bool,
) -> (Vec<String>, Option<Approval>) {
    let old_title = format!("{} {}", old.name, old.version);
    let mut notes = vec![format!("updates {old_title}")];
    if !added.is_empty() {
        notes.push(format!(
            "NEW capabilities compared with {}: {}",
            old.version,
            added.lines().join("; ")
        ));
    }
    if new_signer {
        notes.push(format!(
            "signed by a different key than {} ({})",
            old.version,
            old.signer
                .as_ref()
                .map_or("unsigned".to_owned(), ToString::to_string)
        ));
    }
    let why = match (!added.is_empty(), new_signer) {
        (false, false) => return (notes, None),
        (true, true) => format!(
            "it asks for new capabilities ({}) and is signed by another key",
            added.lines().join("; ")
        ),
        (true, false) => format!(
            "it asks for new capabilities ({})",
            added.lines().join("; ")
        ),
        (false, true) => "it is signed by another key".to_owned(),
    };
    let version = title.rsplit(' ').next().unwrap_or(title);
    (
        notes,
        Some(Approval {
            question: format!("update to {title}?"),
            refusal: format!("refusing to update {old_title} to {version}: {why}"),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkg::Kind;

    fn locked(signer: Option<&str>) -> LockedPackage {
        LockedPackage {
            name: "acme:x".parse().unwrap(),
            version: semver::Version::new(1, 0, 0),
            kind: Kind::Predicate,
            registry: Some("r.io".into()),
            source: "r.io/acme/x:1.0.0".into(),
            insecure: false,
            digest: format!("sha256:{}", "a".repeat(64)),
            manifest: format!("sha256:{}", "b".repeat(64)),
            signer: signer.map(|s| s.parse().unwrap()),
            signature: None,
            capabilities: Capabilities::default(),
        }
    }

    #[test]
    fn an_update_needs_approval_only_for_new_capabilities_or_another_signer() {
        let old = locked(None);
        let none = Capabilities::default();
        let (notes, approval) = update_review(&old, "acme:x 1.1.0", &none, false);
        assert_eq!(notes, ["updates acme:x 1.0.0"]);
        assert_eq!(approval, None);

        let git = Capabilities {
            exec: ["git".to_owned()].into(),
            ..Capabilities::default()
        };
        let (notes, approval) = update_review(&old, "acme:x 1.1.0", &git, false);
        assert_eq!(
            notes[1],
            "NEW capabilities compared with 1.0.0: run programs: git"
        );
        let approval = approval.unwrap();
        assert_eq!(approval.question, "update to acme:x 1.1.0?");
        assert_eq!(
            approval.refusal,
            "refusing to update acme:x 1.0.0 to 1.1.0: it asks for new capabilities (run programs: git)"
        );

        let (notes, approval) = update_review(&old, "acme:x 1.1.0", &git, true);
        assert_eq!(notes[2], "signed by a different key than 1.0.0 (unsigned)");
        assert!(
            approval
                .unwrap()
                .refusal
                .ends_with("(run programs: git) and is signed by another key")
        );
        let (_, approval) = update_review(&old, "acme:x 1.1.0", &none, true);
        assert!(
            approval
                .unwrap()
                .refusal
                .ends_with(": it is signed by another key")
        );
    }

    #[test]
    fn health_tells_missing_from_altered_and_reports_the_signer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let trust = TrustStore::default();
        assert_eq!(health(&locked(None), &store, &trust), Health::Missing);

        // A manifest and component in the store that match the lock entry.
        let manifest = crate::pkg::Manifest {
            schema: crate::pkg::manifest::MANIFEST_SCHEMA,
            name: "acme:x".parse().unwrap(),
            version: semver::Version::new(1, 0, 0),
            kind: Kind::Predicate,
            description: "d".into(),
            license: "MIT".into(),
            repository: None,
            world: Kind::Predicate.world("0.1.0"),
            config_schema: "{}".into(),
            component: crate::pkg::manifest::ComponentRef {
                digest: crate::pkg::manifest::sha256_digest(b"component"),
                size: 9,
            },
            capabilities: Capabilities::default(),
        };
        let mut entry = locked(None);
        entry.digest = store.put(b"component").unwrap();
        entry.manifest = store.put(manifest.to_text().as_bytes()).unwrap();
        assert_eq!(
            health(&entry, &store, &trust),
            Health::Intact {
                signer: SignerState::Unsigned
            }
        );
        // A lock that claims another version than the stored manifest.
        let mut edited = entry.clone();
        edited.version = semver::Version::new(1, 0, 1);
        let Health::Altered { why } = health(&edited, &store, &trust) else {
            panic!("an edited lock is altered");
        };
        assert!(why.contains("tampered with"), "{why}");
    }
}
