//! `kazi pkg init`: write the `kazi-package.toml` of a package with only what its
//! component cannot say about itself: the namespace, a description, a license and
//! where its source lives. `kazi pkg build` takes everything else from the component.

use std::path::{Path, PathBuf};

use super::manifest::{MANIFEST_FILE, SourceManifest, valid_part};
use super::{PkgError, write_atomically};

/// What `kazi pkg init` was given; what is missing comes from the crate's Cargo.toml.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub namespace: String,
    pub description: Option<String>,
    pub license: Option<String>,
    pub repository: Option<String>,
    /// Replace an existing manifest.
    pub force: bool,
}

/// The first lines of a manifest `kazi pkg init` writes.
const HEADER: &str = "\
# The package's manifest: what `kazi pkg build` cannot learn from the component.
# Its name, version, kind, WIT world and capabilities come from the component itself
# (what it exports and what describe() returns). See docs/packages.md.
";

/// Write `dir/kazi-package.toml`. Returns its path and text.
pub fn init(dir: &Path, opts: &InitOptions) -> Result<(PathBuf, String), PkgError> {
    let path = dir.join(MANIFEST_FILE);
    if !valid_part(&opts.namespace) {
        return Err(PkgError::Init {
            path,
            problem: format!(
                "`{}` is not a namespace: use lower-case letters, digits and single `-`, starting with a letter",
                opts.namespace
            ),
            hint: "pass --namespace like `acme`: the package is then `acme:NAME`",
        });
    }
    if path.exists() && !opts.force {
        return Err(PkgError::Init {
            path,
            problem: "it exists already".to_owned(),
            hint: "edit it, or pass --force to replace it",
        });
    }
    let crate_package = read_crate_package(dir)?;
    let from_crate = |key: &str| {
        crate_package
            .as_ref()
            .and_then(|p| p.get(key))
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
    };
    let description = opts
        .description
        .clone()
        .or_else(|| from_crate("description"))
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| PkgError::Init {
            path: path.clone(),
            problem: "it needs a description, and Cargo.toml has none".to_owned(),
            hint: "pass --description \"what it checks, in one line\"",
        })?;
    let license = opts
        .license
        .clone()
        .or_else(|| from_crate("license"))
        .filter(|l| !l.trim().is_empty())
        .ok_or_else(|| PkgError::Init {
            path: path.clone(),
            problem: "it needs a license, and Cargo.toml has none".to_owned(),
            hint: "pass --license with an SPDX expression, such as `--license Apache-2.0`",
        })?;
    let repository = opts.repository.clone().or_else(|| from_crate("repository"));

    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut text = format!(
        "{HEADER}namespace = {}\ndescription = {}\nlicense = {}\n",
        quote(&opts.namespace),
        quote(&description),
        quote(&license)
    );
    if let Some(r) = &repository {
        text.push_str(&format!("repository = {}\n", quote(r)));
    }
    // What is written is what `kazi pkg build` reads.
    SourceManifest::parse(&path, &text)?;
    write_atomically(&path, text.as_bytes(), 0o644)?;
    Ok((path, text))
}

/// The `[package]` table of `dir/Cargo.toml`, if there is one.
fn read_crate_package(dir: &Path) -> Result<Option<toml::Table>, PkgError> {
    let path = dir.join("Cargo.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PkgError::io("read", &path, e)),
    };
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| PkgError::Manifest {
            path: path.clone(),
            message: format!("it does not parse: {}", e.message()),
        })?;
    Ok(doc.get("package").and_then(toml::Value::as_table).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(namespace: &str) -> InitOptions {
        InitOptions {
            namespace: namespace.into(),
            ..InitOptions::default()
        }
    }

    #[test]
    fn the_manifest_holds_only_what_describe_cannot_know() {
        let dir = tempfile::tempdir().unwrap();
        let o = InitOptions {
            description: Some("notes say \"done\"".into()),
            license: Some("MIT".into()),
            ..opts("acme")
        };
        let (path, text) = init(dir.path(), &o).unwrap();
        assert_eq!(path, dir.path().join("kazi-package.toml"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "namespace = \"acme\"",
                "description = 'notes say \"done\"'",
                "license = \"MIT\""
            ]
        );
        let m = SourceManifest::parse(&path, &text).unwrap();
        assert_eq!(m.description, "notes say \"done\"");
        // Not twice, unless asked.
        let e = init(dir.path(), &o).unwrap_err().to_string();
        assert!(
            e.contains("it exists already; hint: edit it, or pass --force"),
            "{e}"
        );
        init(dir.path(), &InitOptions { force: true, ..o }).unwrap();
    }

    #[test]
    fn what_is_not_given_comes_from_cargo_toml_or_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let e = init(dir.path(), &opts("acme")).unwrap_err().to_string();
        assert!(e.contains("it needs a description"), "{e}");
        assert!(e.contains("hint: pass --description"), "{e}");
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"x\"\ndescription = \"from cargo\"\nrepository = \"https://example.com/x\"\n",
        )
        .unwrap();
        let e = init(dir.path(), &opts("acme")).unwrap_err().to_string();
        assert!(e.contains("hint: pass --license"), "{e}");
        let o = InitOptions {
            license: Some("Apache-2.0".into()),
            ..opts("acme")
        };
        let (_, text) = init(dir.path(), &o).unwrap();
        assert!(text.contains("description = \"from cargo\"\n"), "{text}");
        assert!(
            text.ends_with("repository = \"https://example.com/x\"\n"),
            "{text}"
        );
        let e = init(dir.path(), &opts("Acme")).unwrap_err().to_string();
        assert!(e.contains("`Acme` is not a namespace"), "{e}");
        assert!(e.contains(&dir.path().join("kazi-package.toml").display().to_string()));
    }
}
