//! `kazi-package.toml`: what a package is (name, version, kind, world), what it asks
//! for (capabilities) and how it is configured (config schema). The author writes the
//! *source* manifest; `kazi pkg build` checks it against the component and writes the
//! *published* manifest, which travels with the component and is what a signature
//! covers.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::PkgError;
use crate::sandbox::Grants;

/// The manifest's file name, in a package's source directory and in a built package.
pub const MANIFEST_FILE: &str = "kazi-package.toml";
/// Version of the published manifest format.
pub const MANIFEST_SCHEMA: u32 = 1;

/// What a package holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Predicate,
    Profile,
}

impl Kind {
    /// The WIT world of this kind at a WIT version: `kazi:predicate/predicate@0.1.0`.
    pub fn world(self, wit_version: &str) -> String {
        match self {
            Kind::Predicate => format!("kazi:predicate/predicate@{wit_version}"),
            Kind::Profile => format!("kazi:profile/profile@{wit_version}"),
        }
    }

    /// The interface a component of this kind exports, without its version.
    fn export(self) -> &'static str {
        match self {
            Kind::Predicate => "kazi:predicate/evaluator",
            Kind::Profile => "kazi:profile/translator",
        }
    }

    /// The kind and world of a component that has `export`
    /// (`kazi:predicate/evaluator@0.1.0` → predicate, `kazi:predicate/predicate@0.1.0`).
    pub fn of_export(export: &str) -> Option<(Kind, String)> {
        let (interface, version) = export.split_once('@')?;
        [Kind::Predicate, Kind::Profile]
            .into_iter()
            .find(|k| k.export() == interface)
            .map(|k| (k, k.world(version)))
    }

    /// The kind of a world name, if it is a kazi world with a semver version.
    pub fn of_world(world: &str) -> Option<Kind> {
        let (name, version) = world.split_once('@')?;
        version.parse::<semver::Version>().ok()?;
        [Kind::Predicate, Kind::Profile]
            .into_iter()
            .find(|k| k.world("").trim_end_matches('@') == name)
    }

    /// `predicate` or `profile`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Predicate => "predicate",
            Kind::Profile => "profile",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A package name, `namespace:name`, both kebab-case (`acme:coverage`), as in WIT.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageName {
    pub namespace: String,
    pub name: String,
}

/// A namespace or name part: kebab-case, starting with a letter.
pub fn valid_part(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.ends_with('-')
        && !s.contains("--")
}

impl FromStr for PackageName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let Some((namespace, name)) = s.split_once(':') else {
            return Err(format!(
                "package name `{s}` has no namespace; write `namespace:name`, such as `acme:{s}`"
            ));
        };
        for (what, part) in [("namespace", namespace), ("name", name)] {
            if !valid_part(part) {
                return Err(format!(
                    "package name `{s}` has an invalid {what} `{part}`: use lower-case letters, digits and single `-`, starting with a letter"
                ));
            }
        }
        Ok(Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl TryFrom<String> for PackageName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<PackageName> for String {
    fn from(n: PackageName) -> String {
        n.to_string()
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.name)
    }
}

/// Whether a package may write the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsAccess {
    #[default]
    Read,
    Write,
}

impl FsAccess {
    fn is_read(&self) -> bool {
        *self == FsAccess::Read
    }
}

/// What a package asks the host for, in the words of `[predicate.allow]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Programs to run.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub exec: BTreeSet<String>,
    /// Hosts to reach, `host:port` (normalised: loopback aliases are `localhost`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub net: BTreeSet<String>,
    /// Environment variables to read.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub env: BTreeSet<String>,
    /// `"write"` to write the workspace; reading it needs no grant.
    #[serde(default, skip_serializing_if = "FsAccess::is_read")]
    pub fs: FsAccess,
}

impl Capabilities {
    /// The capabilities a component declared in `describe`.
    pub fn from_grants(g: &Grants) -> Self {
        Self {
            exec: g.exec.clone(),
            net: g.net.iter().map(ToString::to_string).collect(),
            env: g.env.clone(),
            fs: if g.fs_write {
                FsAccess::Write
            } else {
                FsAccess::Read
            },
        }
    }

    /// As grants; fails on a `net` entry that is not `host:port`.
    pub fn to_grants(&self) -> Result<Grants, String> {
        let mut g = Grants {
            exec: self.exec.clone(),
            env: self.env.clone(),
            fs_write: self.fs == FsAccess::Write,
            ..Grants::default()
        };
        for n in &self.net {
            g.allow_net(n)
                .map_err(|e| format!("capabilities.net: {e}"))?;
        }
        Ok(g)
    }

    /// The same capabilities with `net` normalised (`127.0.0.1:80` → `localhost:80`).
    pub fn normalised(&self) -> Result<Self, String> {
        Ok(Self::from_grants(&self.to_grants()?))
    }

    /// Nothing beyond reading the workspace.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// What `self` asks for that `old` did not.
    pub fn added_to(&self, old: &Capabilities) -> Capabilities {
        Capabilities {
            exec: self.exec.difference(&old.exec).cloned().collect(),
            net: self.net.difference(&old.net).cloned().collect(),
            env: self.env.difference(&old.env).cloned().collect(),
            fs: if self.fs == FsAccess::Write && old.fs == FsAccess::Read {
                FsAccess::Write
            } else {
                FsAccess::Read
            },
        }
    }

    /// One line per kind of access, for people: `run programs: cargo, git`.
    pub fn lines(&self) -> Vec<String> {
        let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
        let mut out = Vec::new();
        if !self.exec.is_empty() {
            out.push(format!("run programs: {}", join(&self.exec)));
        }
        if !self.net.is_empty() {
            out.push(format!("reach hosts: {}", join(&self.net)));
        }
        if !self.env.is_empty() {
            out.push(format!("read environment variables: {}", join(&self.env)));
        }
        if self.fs == FsAccess::Write {
            out.push("write the workspace".to_owned());
        }
        out
    }

    /// The `[predicate.allow]` lines a goal needs to grant all of this.
    pub fn allow_lines(&self) -> Vec<String> {
        let list = |s: &BTreeSet<String>| {
            s.iter()
                .map(|i| format!("\"{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = Vec::new();
        if !self.exec.is_empty() {
            out.push(format!("exec = [{}]", list(&self.exec)));
        }
        if !self.net.is_empty() {
            out.push(format!("net = [{}]", list(&self.net)));
        }
        if !self.env.is_empty() {
            out.push(format!("env = [{}]", list(&self.env)));
        }
        if self.fs == FsAccess::Write {
            out.push("fs = \"write\"".to_owned());
        }
        out
    }
}

/// The manifest an author writes next to the component's sources. Only what the
/// component cannot say is required (`namespace`, `description`, `license`); `kazi
/// pkg build` takes the name, version, kind, world and capabilities from the
/// component itself. Any of those written here must agree with it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceManifest {
    /// The namespace, `acme` in `acme:coverage`. Without it, `name` must be set.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `namespace:name`; the part after `:` must be the name `describe()` returns.
    #[serde(default)]
    pub name: Option<PackageName>,
    #[serde(default)]
    pub version: Option<semver::Version>,
    #[serde(default)]
    pub kind: Option<Kind>,
    pub description: String,
    pub license: String,
    #[serde(default)]
    pub repository: Option<String>,
    /// The WIT world and version, such as `kazi:predicate/predicate@0.1.0`.
    #[serde(default)]
    pub world: Option<String>,
    /// The component, relative to the manifest; without it `kazi pkg build` builds
    /// the crate next to the manifest with cargo.
    #[serde(default)]
    pub component: Option<PathBuf>,
    /// A JSON Schema file, relative to the manifest; it must equal the schema the
    /// component declares. Without it the declared schema is published as is.
    #[serde(default)]
    pub config_schema: Option<PathBuf>,
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
}

impl SourceManifest {
    /// Read and check `DIR/kazi-package.toml`.
    pub fn read(dir: &Path) -> Result<Self, PkgError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                PkgError::Manifest {
                    path: path.clone(),
                    message: format!(
                        "there is no {MANIFEST_FILE}; hint: write one with `kazi pkg init --namespace NAMESPACE` next to the component's Cargo.toml (see docs/packages.md)"
                    ),
                }
            } else {
                PkgError::io("read", &path, source)
            }
        })?;
        Self::parse(&path, &text)
    }

    /// Parse manifest text; `path` names it in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, PkgError> {
        let bad = |message: String| PkgError::Manifest {
            path: path.to_owned(),
            message,
        };
        let mut m: SourceManifest =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().to_owned()))?;
        if m.description.trim().is_empty() {
            return Err(bad(
                "`description` is empty; say in one line what it checks".into(),
            ));
        }
        if m.license.trim().is_empty() {
            return Err(bad(
                "`license` is empty; use an SPDX expression such as \"Apache-2.0\"".into(),
            ));
        }
        match (&m.namespace, &m.name) {
            (None, None) => {
                return Err(bad(
                    "neither `namespace` nor `name` is set; hint: add `namespace = \"acme\"`: the package is then `acme:NAME`, NAME being what describe() returns".into(),
                ));
            }
            (Some(ns), _) if !valid_part(ns) => {
                return Err(bad(format!(
                    "`namespace = \"{ns}\"` is not a namespace: use lower-case letters, digits and single `-`, starting with a letter"
                )));
            }
            (Some(ns), Some(n)) if *ns != n.namespace => {
                return Err(bad(format!(
                    "`namespace = \"{ns}\"` and `name = \"{n}\"` disagree; hint: keep one of them"
                )));
            }
            _ => {}
        }
        if let Some(world) = &m.world {
            match Kind::of_world(world) {
                None => {
                    return Err(bad(format!(
                        "`world = \"{world}\"` is not a kazi world such as `kazi:predicate/predicate@0.2.0`; hint: remove it: kazi reads the world from the component"
                    )));
                }
                Some(k) if m.kind.is_some_and(|kind| kind != k) => {
                    return Err(bad(format!(
                        "`world = \"{world}\"` is a {k}'s world, but `kind = \"{}\"`; hint: remove both: kazi reads them from the component",
                        m.kind.expect("checked")
                    )));
                }
                Some(_) => {}
            }
        }
        if let Some(caps) = &mut m.capabilities {
            *caps = caps.normalised().map_err(bad)?;
            if m.kind == Some(Kind::Profile) && !caps.is_empty() {
                return Err(bad(
                    "a profile gets no capabilities; remove [capabilities]".into()
                ));
            }
        }
        Ok(m)
    }

    /// The package's namespace (from `namespace` or from `name`).
    pub fn namespace(&self) -> &str {
        match (&self.namespace, &self.name) {
            (Some(ns), _) => ns,
            (None, Some(n)) => &n.namespace,
            (None, None) => unreachable!("parse refuses a manifest without either"),
        }
    }
}

/// Where the component of a published package is, by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentRef {
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    pub size: u64,
}

/// The manifest as published: everything a consumer sees before running anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    pub name: PackageName,
    pub version: semver::Version,
    pub kind: Kind,
    pub description: String,
    pub license: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    pub world: String,
    /// The config JSON Schema, as JSON text.
    pub config_schema: String,
    pub component: ComponentRef,
    #[serde(default)]
    pub capabilities: Capabilities,
}

impl Manifest {
    /// The canonical text (what is published, stored, and digested for signatures).
    pub fn to_text(&self) -> String {
        format!(
            "# kazi package manifest, written by `kazi pkg build`.\n{}",
            toml::to_string(self).expect("a manifest serialises")
        )
    }

    /// Parse a published manifest; `origin` names it in messages.
    pub fn parse(origin: &str, text: &str) -> Result<Self, PkgError> {
        let m: Manifest = toml::from_str(text).map_err(|e| PkgError::Manifest {
            path: PathBuf::from(origin),
            message: format!("not a kazi package manifest: {}", e.to_string().trim_end()),
        })?;
        if m.schema != MANIFEST_SCHEMA {
            return Err(PkgError::Manifest {
                path: PathBuf::from(origin),
                message: format!(
                    "manifest schema {} is not supported (this kazi reads {MANIFEST_SCHEMA}); hint: upgrade kazi",
                    m.schema
                ),
            });
        }
        if Kind::of_world(&m.world) != Some(m.kind) {
            return Err(PkgError::Manifest {
                path: PathBuf::from(origin),
                message: format!(
                    "`world = \"{}\"` is not the world of a {}; hint: ask the publisher to rebuild it with `kazi pkg build`",
                    m.world, m.kind
                ),
            });
        }
        Ok(m)
    }

    /// `acme:coverage 1.2.0`.
    pub fn title(&self) -> String {
        format!("{} {}", self.name, self.version)
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::sandbox::digest_hex(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "acme:no-todo"
version = "1.2.0"
kind = "predicate"
description = "no todo!() left"
license = "Apache-2.0"
world = "kazi:predicate/predicate@0.1.0"

[capabilities]
exec = ["git"]
net = ["127.0.0.1:8080"]
"#;

    #[test]
    fn package_names_are_namespaced_kebab_case() {
        let n: PackageName = "acme:no-todo".parse().unwrap();
        assert_eq!((n.namespace.as_str(), n.name.as_str()), ("acme", "no-todo"));
        assert_eq!(n.to_string(), "acme:no-todo");
        let e = "coverage".parse::<PackageName>().unwrap_err();
        assert!(e.contains("acme:coverage"), "{e}");
        for bad in [
            "Acme:x",
            "acme:",
            ":x",
            "acme:x-",
            "acme:1x",
            "acme:a--b",
            "a:b:c",
        ] {
            assert!(bad.parse::<PackageName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn source_manifest_parses_and_normalises_net() {
        let m = SourceManifest::parse(Path::new("kazi-package.toml"), GOOD).unwrap();
        assert_eq!(m.version, Some(semver::Version::new(1, 2, 0)));
        assert_eq!(m.namespace(), "acme");
        let caps = m.capabilities.unwrap();
        assert!(caps.net.contains("localhost:8080"));
        assert_eq!(
            caps.lines(),
            ["run programs: git", "reach hosts: localhost:8080"]
        );
    }

    #[test]
    fn a_short_manifest_says_only_what_describe_cannot() {
        let text = "namespace = \"acme\"\ndescription = \"no todo!() left\"\nlicense = \"MIT\"\n";
        let m = SourceManifest::parse(Path::new("kazi-package.toml"), text).unwrap();
        assert_eq!(m.namespace(), "acme");
        assert_eq!(
            (&m.name, &m.version, &m.kind, &m.world, &m.capabilities),
            (&None, &None, &None, &None, &None)
        );
    }

    #[test]
    fn source_manifest_errors_name_the_problem() {
        let p = Path::new("kazi-package.toml");
        let err = |text: &str| SourceManifest::parse(p, text).unwrap_err().to_string();
        let e = err(&GOOD.replace("1.2.0", "1.2"));
        assert!(e.contains("version"), "{e}");
        let e = err(&GOOD.replace("kind = ", "colour = \"x\"\nkind = "));
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = err(&GOOD.replace("predicate/predicate@0.1.0", "predicate/evaluator@0.1.0"));
        assert!(e.contains("is not a kazi world"), "{e}");
        assert!(e.contains("hint: remove it"), "{e}");
        let e = err(&GOOD.replace("predicate/predicate@", "profile/profile@"));
        assert!(
            e.contains("is a profile's world, but `kind = \"predicate\"`"),
            "{e}"
        );
        let e = err(&GOOD.replace("8080", "x"));
        assert!(e.contains("capabilities.net"), "{e}");
        let e = err(&GOOD.replace("name = \"acme:no-todo\"", ""));
        assert!(e.contains("neither `namespace` nor `name` is set"), "{e}");
        assert!(e.contains("hint: add `namespace = \"acme\"`"), "{e}");
        let e = err(&GOOD.replace("name = \"acme:no-todo\"", "namespace = \"Acme\""));
        assert!(
            e.contains("`namespace = \"Acme\"` is not a namespace"),
            "{e}"
        );
        let e = err(&GOOD.replace("name = ", "namespace = \"beta\"\nname = "));
        assert!(
            e.contains("`namespace = \"beta\"` and `name = \"acme:no-todo\"` disagree"),
            "{e}"
        );
        let e = err(&GOOD.replace("license = \"Apache-2.0\"", "license = \" \""));
        assert!(e.contains("`license` is empty"), "{e}");
    }

    #[test]
    fn worlds_and_exports_name_their_kind() {
        assert_eq!(
            Kind::of_export("kazi:predicate/evaluator@0.2.0"),
            Some((Kind::Predicate, "kazi:predicate/predicate@0.2.0".to_owned()))
        );
        assert_eq!(
            Kind::of_export("kazi:profile/translator@0.1.0"),
            Some((Kind::Profile, "kazi:profile/profile@0.1.0".to_owned()))
        );
        assert_eq!(Kind::of_export("wasi:cli/run@0.2.0"), None);
        assert_eq!(Kind::of_export("kazi:predicate/evaluator"), None);
        assert_eq!(
            Kind::of_world("kazi:predicate/predicate@0.1.0"),
            Some(Kind::Predicate)
        );
        assert_eq!(
            Kind::of_world("kazi:profile/profile@1.0.0"),
            Some(Kind::Profile)
        );
        assert_eq!(Kind::of_world("kazi:profile/profile@1"), None);
        assert_eq!(Kind::of_world("kazi:predicate/evaluator@0.1.0"), None);
    }

    #[test]
    fn added_capabilities_are_only_the_new_ones() {
        let old = Capabilities {
            exec: ["git".to_owned()].into(),
            ..Capabilities::default()
        };
        let new = Capabilities {
            exec: ["git".to_owned(), "cargo".to_owned()].into(),
            fs: FsAccess::Write,
            ..Capabilities::default()
        };
        let added = new.added_to(&old);
        assert_eq!(
            added.lines(),
            ["run programs: cargo", "write the workspace"]
        );
        assert!(old.added_to(&new).is_empty());
        assert_eq!(
            added.allow_lines(),
            ["exec = [\"cargo\"]", "fs = \"write\""]
        );
    }

    #[test]
    fn published_manifest_round_trips() {
        let m = Manifest {
            schema: MANIFEST_SCHEMA,
            name: "acme:x".parse().unwrap(),
            version: semver::Version::new(0, 1, 0),
            kind: Kind::Predicate,
            description: "d".into(),
            license: "MIT".into(),
            repository: None,
            world: Kind::Predicate.world("0.1.0"),
            config_schema: "{}".into(),
            component: ComponentRef {
                digest: sha256_digest(b"x"),
                size: 1,
            },
            capabilities: Capabilities::default(),
        };
        let text = m.to_text();
        assert_eq!(Manifest::parse("m", &text).unwrap(), m);
        let e = Manifest::parse("m", &text.replace("schema = 1", "schema = 2")).unwrap_err();
        assert!(e.to_string().contains("upgrade kazi"), "{e}");
        let e = Manifest::parse("m", &text.replace("predicate/predicate", "profile/profile"))
            .unwrap_err();
        assert!(
            e.to_string().contains("is not the world of a predicate"),
            "{e}"
        );
    }
}
