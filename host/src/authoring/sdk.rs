//! The `kazi-sdk` this binary carries. The build script embeds every file of `sdk/`
//! (see `kazi_guest_build::embed`); [`Sdk::embedded`] turns them into a crate that
//! builds on its own: the keys its `Cargo.toml` inherits from kazi's workspace
//! (`version.workspace = true`, `wit-bindgen.workspace = true`, `[lints]`) are
//! written out as plain values, so the copy needs nothing but crates.io.
//!
//! `kazi predicate new` writes that copy into the new crate ([`DIR`]), and the crate
//! depends on it by a relative path: it builds with no kazi checkout anywhere, can be
//! committed and built elsewhere, and keeps the SDK it was created with until its
//! author replaces it on purpose (`kazi predicate sdk --update`). A copy is known by
//! its version and [`Sdk::digest`], a hash of its files.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));
}

/// Where a scaffolded crate keeps its copy of the SDK, relative to the crate.
pub const DIR: &str = "kazi-sdk";

/// The first lines of a copied SDK's `Cargo.toml`.
const MANIFEST_HEADER: &str = "\
# kazi-sdk, copied out of the kazi binary by `kazi predicate new` or
# `kazi predicate sdk --update`. The keys it inherited from kazi's own workspace are
# written out. kazi never changes this copy by itself: `kazi predicate sdk` compares
# it with the SDK of the kazi you run, and `--update` replaces it.

";

/// Why an SDK could not be prepared, read or written.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The embedded SDK cannot be made standalone: a bug in how kazi was built.
    #[error(
        "the kazi-sdk embedded in this kazi cannot be used: {reason}; hint: this is a bug in kazi's build, please report it"
    )]
    Embedded { reason: String },
    /// A copy on disk whose `Cargo.toml` is not the SDK's.
    #[error("{} is not a copy of kazi-sdk: {reason}", path.display())]
    NotSdk { path: PathBuf, reason: String },
    /// A directory that is not a crate.
    #[error(
        "there is no Cargo.toml in {}; hint: pass the predicate crate's directory",
        dir.display()
    )]
    NoCrate { dir: PathBuf },
    /// `--update` on a crate whose SDK is not a copy inside it.
    #[error(
        "{} takes kazi-sdk from {found}, not from a copy inside the crate, so there is nothing to replace; hint: write `kazi-sdk = {{ path = \"{DIR}\" }}` under [dependencies] and run `kazi predicate sdk --update` again",
        manifest.display()
    )]
    NotACopy { manifest: PathBuf, found: String },
    #[error("failed to read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One file of an SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkFile {
    /// Relative, with `/` separators.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// A set of SDK files, sorted by path: the one this binary carries, or a copy on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdk {
    /// `package.version` of its `Cargo.toml`.
    pub version: String,
    pub files: Vec<SdkFile>,
}

impl Sdk {
    /// The SDK this binary carries, standalone.
    pub fn embedded() -> Result<Self, SdkError> {
        Self::standalone(embedded::SDK_FILES, embedded::WORKSPACE_MANIFEST)
    }

    /// `files` (relative path, bytes) of an SDK crate inside a workspace whose root
    /// manifest is `workspace`, with its `Cargo.toml` made standalone.
    pub fn standalone(files: &[(&str, &[u8])], workspace: &str) -> Result<Self, SdkError> {
        let embedded = |reason: String| SdkError::Embedded { reason };
        let manifest = files
            .iter()
            .find(|(p, _)| *p == "Cargo.toml")
            .ok_or_else(|| embedded("it has no Cargo.toml".into()))?;
        let text = std::str::from_utf8(manifest.1)
            .map_err(|_| embedded("its Cargo.toml is not UTF-8".into()))?;
        let workspace: toml::Table = workspace
            .parse()
            .map_err(|e| embedded(format!("the workspace Cargo.toml does not parse: {e}")))?;
        let (manifest, version) = standalone_manifest(text, &workspace).map_err(embedded)?;
        let mut out: Vec<SdkFile> = files
            .iter()
            .map(|(path, bytes)| SdkFile {
                path: (*path).to_owned(),
                bytes: if *path == "Cargo.toml" {
                    manifest.clone().into_bytes()
                } else {
                    bytes.to_vec()
                },
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Self {
            version,
            files: out,
        })
    }

    /// The SDK copy in `dir`, as it is on disk (build output and hidden files left out).
    pub fn read(dir: &Path) -> Result<Self, SdkError> {
        let mut files = Vec::new();
        read_tree(dir, dir, &mut files)?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest_path = dir.join("Cargo.toml");
        let not_sdk = |reason: String| SdkError::NotSdk {
            path: dir.to_owned(),
            reason,
        };
        let manifest = files
            .iter()
            .find(|f| f.path == "Cargo.toml")
            .ok_or_else(|| not_sdk("it has no Cargo.toml".into()))?;
        let table: toml::Table = std::str::from_utf8(&manifest.bytes)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| not_sdk(format!("{} does not parse", manifest_path.display())))?;
        let package = table.get("package").and_then(toml::Value::as_table);
        let name = package.and_then(|p| p.get("name")).and_then(|n| n.as_str());
        if name != Some("kazi-sdk") {
            return Err(not_sdk(format!(
                "its package is {}, not `kazi-sdk`",
                name.map_or("unnamed".to_owned(), |n| format!("`{n}`"))
            )));
        }
        let version = package
            .and_then(|p| p.get("version"))
            .and_then(|v| v.as_str())
            .unwrap_or("(no version)")
            .to_owned();
        Ok(Self { version, files })
    }

    /// `sha256:` over every file's path and bytes, in path order: two copies with the
    /// same digest are the same SDK.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for f in &self.files {
            h.update(f.path.as_bytes());
            h.update([0]);
            h.update((f.bytes.len() as u64).to_le_bytes());
            h.update(&f.bytes);
        }
        format!("sha256:{}", hex::encode(h.finalize()))
    }

    /// For people: `kazi-sdk 0.1.0 (sha256:0123456789ab)`.
    pub fn describe(&self) -> String {
        let digest = self.digest();
        format!("kazi-sdk {} ({})", self.version, &digest[..19])
    }

    /// Write the files under `dir`, creating directories. The caller makes it atomic
    /// (write into a fresh directory, then rename).
    pub fn write_into(&self, dir: &Path) -> Result<(), SdkError> {
        for f in &self.files {
            let path = dir.join(&f.path);
            let parent = path.parent().unwrap_or(dir);
            std::fs::create_dir_all(parent)
                .and_then(|()| std::fs::write(&path, &f.bytes))
                .map_err(|source| SdkError::Write {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// Where a crate takes `kazi-sdk` from, as its `Cargo.toml` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependency {
    /// By path: as written, and resolved against the crate's directory.
    Path { written: String, dir: PathBuf },
    /// From somewhere else (a registry version, git); the entry as TOML.
    Other(String),
    /// Not a dependency of the crate.
    Missing,
}

/// Where the crate in `dir` takes `kazi-sdk` from (`[dependencies]`).
pub fn dependency(dir: &Path) -> Result<Dependency, SdkError> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            SdkError::NoCrate {
                dir: dir.to_owned(),
            }
        } else {
            SdkError::Read {
                path: manifest.clone(),
                source,
            }
        }
    })?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SdkError::NotSdk {
            path: manifest.clone(),
            reason: format!("it does not parse: {}", e.message()),
        })?;
    let Some(entry) = doc.get("dependencies").and_then(|d| d.get("kazi-sdk")) else {
        return Ok(Dependency::Missing);
    };
    Ok(match entry.get("path").and_then(toml::Value::as_str) {
        Some(p) => Dependency::Path {
            written: p.to_owned(),
            dir: dir.join(p),
        },
        None => Dependency::Other(entry.to_string()),
    })
}

/// The crate's own copy of the SDK when it is not `ours` (an older kazi's, or edited);
/// `None` when it is the same, or the crate does not build against a copy it has.
pub fn drift(crate_dir: &Path, ours: &Sdk) -> Option<Sdk> {
    let Ok(Dependency::Path { dir, .. }) = dependency(crate_dir) else {
        return None;
    };
    let theirs = Sdk::read(&dir).ok()?;
    (theirs.digest() != ours.digest()).then_some(theirs)
}

/// Replace the SDK copy of the crate in `crate_dir` with `sdk`. The crate must take
/// `kazi-sdk` by a path inside itself. All or nothing: the new copy is written next
/// to the old one, the old one is moved aside, the new one moved in, the old one
/// removed. Returns the copy's directory.
pub fn replace(crate_dir: &Path, sdk: &Sdk) -> Result<PathBuf, SdkError> {
    use std::os::unix::fs::PermissionsExt;
    let manifest = crate_dir.join("Cargo.toml");
    let target = match dependency(crate_dir)? {
        Dependency::Path { written, dir } => {
            let inside = Path::new(&written).is_relative()
                && !Path::new(&written)
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir));
            if !inside {
                return Err(SdkError::NotACopy {
                    manifest,
                    found: format!("the path `{written}`"),
                });
            }
            dir
        }
        Dependency::Other(entry) => {
            return Err(SdkError::NotACopy {
                manifest,
                found: format!("`{entry}`"),
            });
        }
        Dependency::Missing => {
            return Err(SdkError::NotACopy {
                manifest,
                found: "nowhere (it is not a dependency)".into(),
            });
        }
    };
    let parent = target.parent().unwrap_or(crate_dir);
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| SdkError::Write { path, source }
    };
    std::fs::create_dir_all(parent).map_err(write_err(parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".kazi-sdk-new-")
        .permissions(std::fs::Permissions::from_mode(0o777))
        .tempdir_in(parent)
        .map_err(write_err(parent))?;
    sdk.write_into(staging.path())?;
    let old = tempfile::Builder::new()
        .prefix(".kazi-sdk-old-")
        .tempdir_in(parent)
        .map_err(write_err(parent))?;
    let aside = old.path().join("kazi-sdk");
    let had_copy = target.exists();
    if had_copy {
        std::fs::rename(&target, &aside).map_err(write_err(&target))?;
    }
    if let Err(source) = std::fs::rename(staging.path(), &target) {
        if had_copy {
            let _ = std::fs::rename(&aside, &target);
        }
        return Err(SdkError::Write {
            path: target,
            source,
        });
    }
    let _ = staging.keep();
    // `old` (with the previous copy inside) is removed when dropped.
    Ok(target)
}

/// Read every file under `dir` into `out` (paths relative to `root`), leaving out
/// `target/` at the top and hidden entries, as the build script does when embedding.
fn read_tree(root: &Path, dir: &Path, out: &mut Vec<SdkFile>) -> Result<(), SdkError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| SdkError::Read { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let entry = entry.map_err(read_err(dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || (dir == root && name == "target") {
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(read_err(&path))?;
        if meta.is_dir() {
            read_tree(root, &path, out)?;
        } else if meta.is_file() {
            let rel = path
                .strip_prefix(root)
                .expect("walked from the root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let bytes = std::fs::read(&path).map_err(read_err(&path))?;
            out.push(SdkFile { path: rel, bytes });
        }
    }
    Ok(())
}

/// The tables of a manifest that hold dependencies.
const DEPENDENCY_TABLES: &[&str] = &["dependencies", "dev-dependencies", "build-dependencies"];

/// The SDK's `Cargo.toml` with every `workspace = true` key replaced by the value it
/// inherits from `workspace` (the root manifest), as `cargo package` does; and its
/// version. Fails on what a standalone copy cannot have: a key the workspace does not
/// define, or a dependency by path (a crate of kazi's workspace).
fn standalone_manifest(text: &str, workspace: &toml::Table) -> Result<(String, String), String> {
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e| format!("its Cargo.toml does not parse: {e}"))?;
    let ws = workspace
        .get("workspace")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    let ws_table = |key: &str| {
        ws.get(key)
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default()
    };
    let ws_package = ws_table("package");
    let ws_dependencies = ws_table("dependencies");

    let package = doc
        .get_mut("package")
        .and_then(toml::Value::as_table_mut)
        .ok_or("its Cargo.toml has no [package]")?;
    package.remove("workspace");
    for (key, value) in package.iter_mut() {
        if inherits(value) {
            if matches!(key.as_str(), "readme" | "license-file") {
                return Err(format!(
                    "`package.{key}` is inherited from the workspace, and its path would not follow the copy"
                ));
            }
            *value = ws_package.get(key).cloned().ok_or_else(|| {
                format!("`package.{key}` inherits a value the workspace does not set")
            })?;
        }
    }
    let version = package
        .get("version")
        .and_then(toml::Value::as_str)
        .ok_or("its Cargo.toml has no `package.version`")?
        .to_owned();

    let mut tables: Vec<(String, &mut toml::Table)> = Vec::new();
    let mut targets = None;
    for (key, value) in doc.iter_mut() {
        match (key.as_str(), value) {
            ("target", toml::Value::Table(t)) => targets = Some(t),
            (k, toml::Value::Table(t)) if DEPENDENCY_TABLES.contains(&k) => {
                tables.push((k.to_owned(), t));
            }
            _ => {}
        }
    }
    for (cfg, value) in targets.into_iter().flatten() {
        if let toml::Value::Table(t) = value {
            for (k, deps) in t.iter_mut() {
                if let (true, toml::Value::Table(deps)) =
                    (DEPENDENCY_TABLES.contains(&k.as_str()), deps)
                {
                    tables.push((format!("target.{cfg}.{k}"), deps));
                }
            }
        }
    }
    for (table, deps) in tables {
        for (name, dep) in deps.iter_mut() {
            *dep = standalone_dependency(&table, name, dep, &ws_dependencies)?;
        }
    }

    if doc.get("lints").is_some_and(inherits) {
        match ws.get("lints") {
            Some(lints) => {
                doc.insert("lints".into(), lints.clone());
            }
            None => {
                doc.remove("lints");
            }
        }
    }
    Ok((
        format!("{MANIFEST_HEADER}{}", render_manifest(doc)?),
        version,
    ))
}

/// A manifest as TOML text in the order people write one: `[package]` (name and
/// version first), `[lib]`, `[features]`, the dependency tables, then the rest. Checked
/// to parse back to `doc`.
fn render_manifest(doc: toml::Table) -> Result<String, String> {
    const ORDER: &[&str] = &[
        "package",
        "lib",
        "features",
        "dependencies",
        "dev-dependencies",
        "build-dependencies",
        "target",
    ];
    let serialise = |t: toml::Table| {
        toml::to_string(&t).map_err(|e| format!("its Cargo.toml does not serialise: {e}"))
    };
    let key = |k: &str| {
        if !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            k.to_owned()
        } else {
            toml::Value::String(k.to_owned()).to_string()
        }
    };
    let mut out = String::new();
    // Top-level values first: after a table header they would belong to that table.
    let (tables, values): (Vec<_>, Vec<_>) =
        doc.clone().into_iter().partition(|(_, v)| v.is_table());
    for (k, v) in values {
        out.push_str(&format!("{} = {v}\n", key(&k)));
    }
    let mut tables = tables;
    tables.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    for (name, table) in tables {
        let toml::Value::Table(mut table) = table else {
            unreachable!("partitioned")
        };
        if !out.is_empty() {
            out.push('\n');
        }
        if name != "package" {
            out.push_str(&serialise(toml::Table::from_iter([(
                name,
                toml::Value::Table(table),
            )]))?);
            continue;
        }
        // [package]: name and version first, then its other values, then subtables
        // such as [package.metadata].
        out.push_str("[package]\n");
        let mut subtables = toml::Table::new();
        let mut keys: Vec<String> = table.keys().cloned().collect();
        keys.sort_by_key(|k| match k.as_str() {
            "name" => 0,
            "version" => 1,
            _ => 2,
        });
        for k in keys {
            let v = table.remove(&k).expect("listed");
            if v.is_table() {
                subtables.insert(k, v);
            } else {
                out.push_str(&format!("{} = {v}\n", key(&k)));
            }
        }
        if !subtables.is_empty() {
            out.push('\n');
            out.push_str(&serialise(toml::Table::from_iter([(
                "package".to_owned(),
                toml::Value::Table(subtables),
            )]))?);
        }
    }
    match out.parse::<toml::Table>() {
        Ok(back) if back == doc => Ok(out),
        _ => Err("its Cargo.toml does not render back to itself".to_owned()),
    }
}

/// `{ workspace = true }`: a key inherited from the workspace.
fn inherits(value: &toml::Value) -> bool {
    value
        .as_table()
        .and_then(|t| t.get("workspace"))
        .and_then(toml::Value::as_bool)
        == Some(true)
}

/// One dependency, standalone: an inherited one takes the workspace's entry plus its
/// own `features` and `optional`; a path is refused.
fn standalone_dependency(
    table: &str,
    name: &str,
    dep: &toml::Value,
    ws_dependencies: &toml::Table,
) -> Result<toml::Value, String> {
    let mut out = if inherits(dep) {
        let from_ws = ws_dependencies.get(name).ok_or_else(|| {
            format!("`{table}.{name}` inherits a dependency the workspace does not declare")
        })?;
        let mut t = match from_ws {
            toml::Value::String(v) => {
                toml::Table::from_iter([("version".to_owned(), toml::Value::String(v.clone()))])
            }
            toml::Value::Table(t) => t.clone(),
            _ => {
                return Err(format!(
                    "`workspace.dependencies.{name}` is neither a version nor a table"
                ));
            }
        };
        let local = dep.as_table().expect("inherits() saw a table");
        if let Some(toml::Value::Array(extra)) = local.get("features") {
            let features = t
                .entry("features")
                .or_insert_with(|| toml::Value::Array(Vec::new()));
            if let toml::Value::Array(f) = features {
                for x in extra {
                    if !f.contains(x) {
                        f.push(x.clone());
                    }
                }
            }
        }
        if let Some(optional) = local.get("optional") {
            t.insert("optional".into(), optional.clone());
        }
        toml::Value::Table(t)
    } else {
        dep.clone()
    };
    if let toml::Value::Table(t) = &mut out {
        if t.contains_key("path") {
            return Err(format!(
                "`{table}.{name}` is a dependency by path, which a copy outside kazi's workspace cannot follow"
            ));
        }
        if t.len() == 1
            && let Some(toml::Value::String(v)) = t.get("version")
        {
            return Ok(toml::Value::String(v.clone()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKSPACE: &str = r#"
[workspace]
members = ["sdk"]

[workspace.package]
version = "0.3.1"
edition = "2024"
license = "Apache-2.0"

[workspace.lints.rust]
unsafe_code = "deny"

[workspace.dependencies]
wit-bindgen = { version = "0.61", default-features = false, features = ["macros"] }
serde = "1"
local = { path = "local" }
"#;

    const MANIFEST: &str = r#"
[package]
name = "kazi-sdk"
version.workspace = true
edition.workspace = true
license = { workspace = true }

[dependencies]
wit-bindgen = { workspace = true, features = ["realloc"] }
serde = { workspace = true, optional = true }
serde_json = "1"

[target.'cfg(unix)'.dev-dependencies]
serde.workspace = true

[lints]
workspace = true
"#;

    fn standalone(manifest: &str) -> Result<toml::Table, String> {
        let ws: toml::Table = WORKSPACE.parse().unwrap();
        standalone_manifest(manifest, &ws).map(|(text, version)| {
            assert!(text.starts_with(MANIFEST_HEADER));
            let t: toml::Table = text.parse().unwrap();
            assert_eq!(t["package"]["version"].as_str(), Some(version.as_str()));
            t
        })
    }

    #[test]
    fn inherited_keys_are_written_out() {
        let t = standalone(MANIFEST).unwrap();
        assert_eq!(t["package"]["version"].as_str(), Some("0.3.1"));
        assert_eq!(t["package"]["edition"].as_str(), Some("2024"));
        assert_eq!(t["package"]["license"].as_str(), Some("Apache-2.0"));
        let wb = &t["dependencies"]["wit-bindgen"];
        assert_eq!(wb["version"].as_str(), Some("0.61"));
        assert_eq!(wb["default-features"].as_bool(), Some(false));
        let features: Vec<&str> = wb["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(features, ["macros", "realloc"]);
        assert_eq!(t["dependencies"]["serde"]["version"].as_str(), Some("1"));
        assert_eq!(t["dependencies"]["serde"]["optional"].as_bool(), Some(true));
        assert_eq!(t["dependencies"]["serde_json"].as_str(), Some("1"));
        assert_eq!(
            t["target"]["cfg(unix)"]["dev-dependencies"]["serde"].as_str(),
            Some("1")
        );
        assert_eq!(t["lints"]["rust"]["unsafe_code"].as_str(), Some("deny"));
        let text = toml::to_string(&t).unwrap();
        assert!(!text.contains("workspace"), "{text}");
    }

    #[test]
    fn the_copy_reads_like_a_manifest_people_write() {
        let manifest =
            format!("cargo-features = [\"x\"]\n{MANIFEST}\n[package.metadata.docs]\nall = true\n");
        let ws: toml::Table = WORKSPACE.parse().unwrap();
        let (text, _) = standalone_manifest(&manifest, &ws).unwrap();
        let body = text.strip_prefix(MANIFEST_HEADER).unwrap();
        assert!(
            body.starts_with(
                "cargo-features = [\"x\"]\n\n[package]\nname = \"kazi-sdk\"\nversion = \"0.3.1\"\n"
            ),
            "{body}"
        );
        let at = |needle: &str| {
            body.find(needle)
                .unwrap_or_else(|| panic!("{needle}: {body}"))
        };
        assert!(
            at("[package.metadata.docs]") < at("[dependencies]"),
            "{body}"
        );
        assert!(at("[dependencies]") < at("[lints"), "{body}");
        let t: toml::Table = text.parse().unwrap();
        assert_eq!(
            t["package"]["metadata"]["docs"]["all"].as_bool(),
            Some(true)
        );
    }

    #[test]
    fn what_a_copy_cannot_have_is_refused() {
        let e = standalone(&MANIFEST.replace("serde_json = \"1\"", "local.workspace = true"))
            .unwrap_err();
        assert!(
            e.contains("`dependencies.local` is a dependency by path"),
            "{e}"
        );
        let e = standalone(&MANIFEST.replace("serde_json = \"1\"", "nope.workspace = true"))
            .unwrap_err();
        assert!(
            e.contains("`dependencies.nope` inherits a dependency the workspace does not declare"),
            "{e}"
        );
        let e = standalone(&MANIFEST.replace(
            "name = \"kazi-sdk\"",
            "name = \"kazi-sdk\"\nrust-version.workspace = true",
        ))
        .unwrap_err();
        assert!(
            e.contains("`package.rust-version` inherits a value the workspace does not set"),
            "{e}"
        );
    }

    #[test]
    fn the_embedded_sdk_is_standalone_and_complete() {
        let sdk = Sdk::embedded().unwrap();
        let paths: Vec<&str> = sdk.files.iter().map(|f| f.path.as_str()).collect();
        for want in ["Cargo.toml", "src/lib.rs", "README.md"] {
            assert!(paths.contains(&want), "{paths:?}");
        }
        assert!(
            paths
                .iter()
                .any(|p| p.starts_with("wit/") && p.ends_with(".wit")),
            "{paths:?}"
        );
        assert!(!paths.iter().any(|p| p.starts_with("target/")), "{paths:?}");
        let manifest = &sdk
            .files
            .iter()
            .find(|f| f.path == "Cargo.toml")
            .unwrap()
            .bytes;
        let text = std::str::from_utf8(manifest).unwrap();
        assert!(
            !text.contains("workspace = true") && !text.contains(".workspace"),
            "{text}"
        );
        assert_eq!(sdk.version, env!("CARGO_PKG_VERSION"));
        // Every other file is the checkout's, byte for byte.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        for f in sdk.files.iter().filter(|f| f.path != "Cargo.toml") {
            assert_eq!(
                std::fs::read(root.join(&f.path)).unwrap(),
                f.bytes,
                "{}",
                f.path
            );
        }
    }

    #[test]
    fn a_written_copy_reads_back_with_the_same_digest() {
        let sdk = Sdk::embedded().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        sdk.write_into(tmp.path()).unwrap();
        std::fs::create_dir_all(tmp.path().join("target/debug")).unwrap();
        std::fs::write(tmp.path().join("target/debug/junk"), "x").unwrap();
        let back = Sdk::read(tmp.path()).unwrap();
        assert_eq!(back, sdk);
        assert_eq!(back.digest(), sdk.digest());
        assert!(
            sdk.describe()
                .starts_with(&format!("kazi-sdk {} (sha256:", sdk.version))
        );
        // One changed byte is another SDK.
        let lib = tmp.path().join("src/lib.rs");
        let mut text = std::fs::read(&lib).unwrap();
        text.push(b'\n');
        std::fs::write(&lib, text).unwrap();
        assert_ne!(Sdk::read(tmp.path()).unwrap().digest(), sdk.digest());
        // Something else is not an SDK.
        std::fs::write(
            tmp.path().join("Cargo.toml"),
            "[package]\nname = \"other\"\n",
        )
        .unwrap();
        let e = Sdk::read(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("its package is `other`, not `kazi-sdk`"), "{e}");
    }

    #[test]
    fn replace_swaps_the_copy_of_a_crate_and_nothing_else() {
        let sdk = Sdk::embedded().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let krate = tmp.path();
        let manifest = |dep: &str| {
            std::fs::write(
                krate.join("Cargo.toml"),
                format!("[package]\nname = \"x\"\n\n[dependencies]\n{dep}\n"),
            )
            .unwrap();
        };
        manifest("kazi-sdk = { path = \"kazi-sdk\" }");
        assert_eq!(
            dependency(krate).unwrap(),
            Dependency::Path {
                written: "kazi-sdk".into(),
                dir: krate.join("kazi-sdk"),
            }
        );
        // No copy yet: one is written.
        assert_eq!(drift(krate, &sdk), None);
        assert_eq!(replace(krate, &sdk).unwrap(), krate.join("kazi-sdk"));
        assert_eq!(Sdk::read(&krate.join("kazi-sdk")).unwrap(), sdk);
        assert_eq!(drift(krate, &sdk), None);
        // An edited copy is replaced whole, files it gained included.
        std::fs::write(krate.join("kazi-sdk/src/extra.rs"), "x").unwrap();
        std::fs::write(krate.join("kazi-sdk/src/lib.rs"), "edited").unwrap();
        let theirs = drift(krate, &sdk).unwrap();
        assert_ne!(theirs.digest(), sdk.digest());
        replace(krate, &sdk).unwrap();
        assert_eq!(drift(krate, &sdk), None);
        assert_eq!(Sdk::read(&krate.join("kazi-sdk")).unwrap(), sdk);
        let left: Vec<_> = std::fs::read_dir(krate)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");

        // Anything but a path inside the crate is left alone.
        for (dep, found) in [
            ("kazi-sdk = { path = \"../sdk\" }", "the path `../sdk`"),
            (
                "kazi-sdk = { path = \"/opt/kazi/sdk\" }",
                "the path `/opt/kazi/sdk`",
            ),
            ("kazi-sdk = \"0.1\"", "`\"0.1\"`"),
            ("", "nowhere"),
        ] {
            manifest(dep);
            let e = replace(krate, &sdk).unwrap_err().to_string();
            assert!(e.contains(&format!("takes kazi-sdk from {found}")), "{e}");
            assert!(
                e.contains("hint: write `kazi-sdk = { path = \"kazi-sdk\" }`"),
                "{e}"
            );
        }
        let e = dependency(&krate.join("nope")).unwrap_err().to_string();
        assert!(e.contains("there is no Cargo.toml in"), "{e}");
    }
}
