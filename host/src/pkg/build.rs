//! `kazi pkg build`: build the component (cargo, for a Rust crate), load it in the
//! sandbox, take its name, version, kind, world and capabilities from it (refusing a
//! `kazi-package.toml` that says otherwise), and write the built package to
//! `target/kazi-package/`: `component.wasm`, the published `kazi-package.toml`, and
//! later `signature.toml`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::component::{self, Expected, Found};
use super::manifest::{
    ComponentRef, MANIFEST_FILE, MANIFEST_SCHEMA, Manifest, PackageName, SourceManifest,
    sha256_digest,
};
use super::oci::Package;
use super::sign::{SIGNATURE_FILE, Signature};
use super::{PkgError, write_atomically};
use crate::sandbox::{Sandbox, Source};

/// Where a built package is written, relative to its source directory.
pub const OUTPUT_DIR: &str = "target/kazi-package";
/// The component's file name in a built package.
pub const COMPONENT_FILE: &str = "component.wasm";

/// The result of a build.
#[derive(Debug)]
pub struct Built {
    /// The built package directory.
    pub dir: PathBuf,
    pub package: Package,
    /// A signature from an earlier build that no longer matched and was removed.
    pub dropped_signature: bool,
}

/// Build and check the package whose `kazi-package.toml` is in `dir`. With
/// `run_cargo`, a crate next to the manifest is built first with
/// `cargo build --release --target wasm32-wasip2` (`$CARGO`, else `cargo`).
///
/// The name, version, kind, world and capabilities are the component's own (its
/// exports and `describe()`); the manifest adds the namespace, description, license
/// and repository. Any of the component's keys the manifest also sets must agree.
pub async fn build(dir: &Path, sandbox: &Sandbox, run_cargo: bool) -> Result<Built, PkgError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let src = SourceManifest::read(dir)?;
    let has_crate = dir.join("Cargo.toml").is_file();
    let cargo_artifact = if run_cargo && has_crate {
        Some(cargo_build(dir)?)
    } else {
        None
    };
    let component_path = match (&src.component, cargo_artifact) {
        (Some(p), _) => dir.join(p),
        (None, Some(a)) => a,
        (None, None) => {
            return Err(PkgError::Manifest {
                path: manifest_path,
                message: if has_crate {
                    "`component` is not set and cargo was not run; hint: drop --no-cargo, or set `component = \"path/to/component.wasm\"`".into()
                } else {
                    "`component` is not set and there is no Cargo.toml to build; hint: set `component = \"path/to/component.wasm\"`".into()
                },
            });
        }
    };
    // Read under the same size cap as any component kazi loads.
    let source = Source::from_file(&component_path).map_err(|source| PkgError::Load {
        what: src.kind.unwrap_or(super::manifest::Kind::Predicate),
        source,
    })?;
    let found = component::inspect(sandbox, &source, src.kind).await?;

    let schema_file = match &src.config_schema {
        Some(rel) => {
            let path = dir.join(rel);
            let text =
                std::fs::read_to_string(&path).map_err(|e| PkgError::io("read", &path, e))?;
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| PkgError::Manifest {
                    path: path.clone(),
                    message: format!("not JSON: {e}"),
                })?;
            Some(value)
        }
        None => None,
    };
    let expected = Expected {
        namespace: Some(src.namespace()),
        name: src.name.as_ref().map(|n| n.name.as_str()),
        version: src.version.as_ref(),
        kind: src.kind,
        world: src.world.as_deref(),
        capabilities: src.capabilities.as_ref(),
        config_schema: schema_file.as_ref(),
    };
    let problems = component::compare(&expected, &found);
    if !problems.is_empty() {
        return Err(PkgError::Mismatch {
            component: component_path,
            manifest: manifest_path,
            problems,
        });
    }
    let name = package_name(src.namespace(), &found, &component_path)?;
    let version = found
        .version
        .parse::<semver::Version>()
        .map_err(|_| PkgError::Describe {
            component: component_path.clone(),
            problem: format!(
                "describe() says version `{}`, which is not semver (such as 1.2.0); hint: return a semver version from describe()",
                found.version
            ),
        })?;
    let capabilities = found
        .capabilities
        .normalised()
        .map_err(|problem| PkgError::Describe {
            component: component_path.clone(),
            problem: format!("describe() asks for capabilities a package cannot carry: {problem}"),
        })?;

    let manifest = Manifest {
        schema: MANIFEST_SCHEMA,
        name,
        version,
        kind: found.kind,
        description: src.description,
        license: src.license,
        repository: src.repository,
        world: found.world,
        config_schema: found.config_schema.to_string(),
        component: ComponentRef {
            digest: sha256_digest(&source.bytes),
            size: source.bytes.len() as u64,
        },
        capabilities,
    };
    let out = dir.join(OUTPUT_DIR);
    write_atomically(&out.join(COMPONENT_FILE), &source.bytes, 0o644)?;
    let text = manifest.to_text();
    write_atomically(&out.join(MANIFEST_FILE), text.as_bytes(), 0o644)?;
    let mut package = Package {
        manifest,
        manifest_text: text,
        component: source.bytes.to_vec(),
        signature: None,
    };
    // Keep a signature only if it still signs exactly this package.
    let sig_path = out.join(SIGNATURE_FILE);
    let mut dropped_signature = false;
    if sig_path.is_file() {
        let digest = package.manifest_digest();
        let still_good = std::fs::read_to_string(&sig_path)
            .ok()
            .and_then(|t| Signature::parse("", &t).ok())
            .filter(|s| s.verify(&package.manifest, &digest).is_ok());
        match still_good {
            Some(s) => package.signature = Some(s),
            None => {
                std::fs::remove_file(&sig_path)
                    .map_err(|e| PkgError::io("remove", &sig_path, e))?;
                dropped_signature = true;
            }
        }
    }
    Ok(Built {
        dir: out,
        package,
        dropped_signature,
    })
}

/// `namespace:name`, the name being what describe() returns (bare, or already with
/// this namespace: `compare` refused another one).
fn package_name(namespace: &str, found: &Found, component: &Path) -> Result<PackageName, PkgError> {
    let bare = found.name.rsplit(':').next().unwrap_or_default();
    format!("{namespace}:{bare}")
        .parse::<PackageName>()
        .map_err(|_| PkgError::Describe {
            component: component.to_owned(),
            problem: format!(
                "describe() names it `{}`, which cannot be a package name; hint: return a name of lower-case letters, digits and single `-`, starting with a letter, such as `has-text`",
                found.name
            ),
        })
}

/// Why cargo did not produce the one component to package.
#[derive(Debug, thiserror::Error)]
pub enum CargoError {
    #[error(
        "cannot run `{cargo}` to build {}: {source}; hint: install Rust (rustup), or build the component yourself and set `component` in {MANIFEST_FILE}",
        dir.display()
    )]
    Spawn {
        cargo: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`cargo build --release --target wasm32-wasip2` failed in {} ({status}); hint: fix the errors above (`rustup target add wasm32-wasip2` if the target is missing)",
        dir.display()
    )]
    Failed { dir: PathBuf, status: String },
    #[error(
        "cargo built no component in {}; hint: the crate needs `crate-type = [\"cdylib\"]` under [lib]",
        dir.display()
    )]
    NoComponent { dir: PathBuf },
    #[error(
        "cargo built several components in {}; hint: set `component` in {MANIFEST_FILE} to the one to package",
        dir.display()
    )]
    Several { dir: PathBuf },
}

/// Run cargo for the crate in `dir` and return the component it produced.
fn cargo_build(dir: &Path) -> Result<PathBuf, PkgError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest_path = dir
        .join("Cargo.toml")
        .canonicalize()
        .map_err(|e| PkgError::io("read", &dir.join("Cargo.toml"), e))?;
    let output = Command::new(&cargo)
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest_path)
        // An inherited flag has turned components into plain modules before.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| CargoError::Spawn {
            cargo: cargo.clone(),
            dir: dir.to_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(CargoError::Failed {
            dir: dir.to_owned(),
            status: output.status.to_string(),
        }
        .into());
    }
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let ours = msg["manifest_path"]
            .as_str()
            .is_some_and(|p| Path::new(p) == manifest_path);
        let cdylib = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
        if !(ours && cdylib) {
            continue;
        }
        for f in msg["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = f.as_str().filter(|f| f.ends_with(".wasm")) {
                found.push(PathBuf::from(f));
            }
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(CargoError::NoComponent {
            dir: dir.to_owned(),
        }
        .into()),
        _ => Err(CargoError::Several {
            dir: dir.to_owned(),
        }
        .into()),
    }
}

/// The built package for `path`: a source directory with `target/kazi-package/`, or a
/// built package directory itself. Checks that the component matches the manifest's
/// digest; the signature, if any, is returned unchecked.
pub fn read_built(path: &Path) -> Result<(PathBuf, Package), PkgError> {
    let path = if path.file_name().is_some_and(|f| f == MANIFEST_FILE) {
        path.parent().unwrap_or(Path::new("."))
    } else {
        path
    };
    let dir = if path.join(COMPONENT_FILE).is_file() {
        path.to_path_buf()
    } else {
        path.join(OUTPUT_DIR)
    };
    let manifest_path = dir.join(MANIFEST_FILE);
    let component_path = dir.join(COMPONENT_FILE);
    if !component_path.is_file() || !manifest_path.is_file() {
        return Err(PkgError::NotBuilt {
            path: path.to_owned(),
        });
    }
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| PkgError::io("read", &manifest_path, e))?;
    let manifest = Manifest::parse(&manifest_path.display().to_string(), &text)?;
    let component = Source::from_file(&component_path)
        .map_err(|source| PkgError::Load {
            what: manifest.kind,
            source,
        })?
        .bytes
        .to_vec();
    let found = sha256_digest(&component);
    if found != manifest.component.digest {
        return Err(PkgError::Digest {
            what: component_path.display().to_string(),
            expected: manifest.component.digest.clone(),
            found,
        });
    }
    let sig_path = dir.join(SIGNATURE_FILE);
    let signature = match std::fs::read_to_string(&sig_path) {
        Ok(t) => Some(Signature::parse(&sig_path.display().to_string(), &t)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(PkgError::io("read", &sig_path, e)),
    };
    Ok((
        dir,
        Package {
            manifest,
            manifest_text: text,
            component,
            signature,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_an_unbuilt_directory_says_to_build() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_built(dir.path()).unwrap_err().to_string();
        assert!(e.contains("kazi pkg build"), "{e}");
    }

    #[test]
    fn a_package_name_is_the_namespace_and_describes_name() {
        let found = |name: &str| Found {
            kind: crate::pkg::Kind::Predicate,
            world: "kazi:predicate/predicate@0.1.0".into(),
            name: name.into(),
            version: "0.1.0".into(),
            config_schema: serde_json::json!({}),
            capabilities: Default::default(),
        };
        let c = Path::new("c.wasm");
        assert_eq!(
            package_name("acme", &found("has-text"), c)
                .unwrap()
                .to_string(),
            "acme:has-text"
        );
        assert_eq!(
            package_name("acme", &found("acme:has-text"), c)
                .unwrap()
                .to_string(),
            "acme:has-text"
        );
        let e = package_name("acme", &found("Has Text"), c)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("describe() names it `Has Text`, which cannot be a package name"),
            "{e}"
        );
        assert!(e.starts_with("c.wasm: "), "{e}");
    }
}
