//! `kazi pkg build`: build the component (cargo, for a Rust crate), load it in the
//! sandbox, check that its world, `describe` and capabilities agree with
//! `kazi-package.toml`, and write the built package to `target/kazi-package/`:
//! `component.wasm`, the published `kazi-package.toml`, and later `signature.toml`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::manifest::{
    Capabilities, ComponentRef, Kind, MANIFEST_FILE, MANIFEST_SCHEMA, Manifest, SourceManifest,
    sha256_digest,
};
use super::oci::{Package, WasmComponent};
use super::sign::{SIGNATURE_FILE, Signature};
use super::{PkgError, write_atomically};
use crate::sandbox::{ArtifactCache, Sandbox, Source};

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
pub async fn build(dir: &Path, sandbox: &Sandbox, run_cargo: bool) -> Result<Built, PkgError> {
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
                path: dir.join(MANIFEST_FILE),
                message: if has_crate {
                    "`component` is not set and cargo was not run; hint: drop --no-cargo, or set `component = \"path/to/component.wasm\"`".into()
                } else {
                    "`component` is not set and there is no Cargo.toml to build; hint: set `component = \"path/to/component.wasm\"`".into()
                },
            });
        }
    };
    let bytes =
        std::fs::read(&component_path).map_err(|e| PkgError::io("read", &component_path, e))?;
    let source = Source::new(component_path.display().to_string(), bytes);
    let declared = describe(sandbox, &source, src.kind).await?;

    let mut problems = Vec::new();
    if declared.name != src.name.name && declared.name != src.name.to_string() {
        problems.push(format!(
            "describe() names it `{}`, the manifest `{}` (the part after the namespace must match)",
            declared.name, src.name
        ));
    }
    match declared.version.parse::<semver::Version>() {
        Ok(v) if v == src.version => {}
        Ok(v) => problems.push(format!(
            "describe() says version {v}, the manifest {}",
            src.version
        )),
        Err(_) => problems.push(format!(
            "describe() says version `{}`, which is not semver",
            declared.version
        )),
    }
    problems.extend(capability_mismatch(
        &declared.capabilities,
        &src.capabilities,
    ));
    if let Some(rel) = &src.config_schema {
        let path = dir.join(rel);
        let text = std::fs::read_to_string(&path).map_err(|e| PkgError::io("read", &path, e))?;
        let file: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| PkgError::Manifest {
                path: path.clone(),
                message: format!("not JSON: {e}"),
            })?;
        if file != declared.config_schema {
            problems.push(format!(
                "the config schema in {} differs from the one describe() declares",
                rel.display()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(PkgError::Build(format!(
            "{} does not agree with {}:\n  - {}\nhint: change the manifest or the component's describe() so they say the same, then build again",
            component_path.display(),
            dir.join(MANIFEST_FILE).display(),
            problems.join("\n  - ")
        )));
    }

    let manifest = Manifest {
        schema: MANIFEST_SCHEMA,
        name: src.name,
        version: src.version,
        kind: src.kind,
        description: src.description,
        license: src.license,
        repository: src.repository,
        world: src.world,
        config_schema: declared.config_schema.to_string(),
        component: ComponentRef {
            digest: sha256_digest(&source.bytes),
            size: source.bytes.len() as u64,
        },
        capabilities: src.capabilities,
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

/// What a component says about itself, for either kind.
#[derive(Debug)]
pub struct Declared {
    pub name: String,
    pub version: String,
    pub config_schema: serde_json::Value,
    pub capabilities: Capabilities,
}

/// Load `source` as a `kind` (checking its world and WIT version, and compiling it into
/// the artifact cache) and call `describe`.
pub async fn describe(
    sandbox: &Sandbox,
    source: &Source,
    kind: Kind,
) -> Result<Declared, PkgError> {
    match kind {
        Kind::Predicate => {
            let p = sandbox
                .load_predicate(source)
                .await
                .map_err(|e| PkgError::Build(e.to_string()))?;
            Ok(Declared {
                name: p.info.name,
                version: p.info.version,
                config_schema: p.info.config_schema,
                capabilities: Capabilities::from_grants(&p.info.capabilities),
            })
        }
        Kind::Profile => {
            let p = sandbox
                .load_profile(source)
                .await
                .map_err(|e| PkgError::Build(e.to_string()))?;
            let properties: serde_json::Map<String, serde_json::Value> = p
                .info
                .options
                .iter()
                .map(|o| (o.clone(), serde_json::json!({})))
                .collect();
            Ok(Declared {
                name: p.info.id,
                version: p.info.version,
                config_schema: serde_json::json!({"type": "object", "properties": properties}),
                capabilities: Capabilities::default(),
            })
        }
    }
}

/// Lines saying how what a component declares differs from what a manifest says.
pub fn capability_mismatch(declared: &Capabilities, manifest: &Capabilities) -> Vec<String> {
    let mut out = Vec::new();
    let more = declared.added_to(manifest);
    let less = manifest.added_to(declared);
    if !more.is_empty() {
        out.push(format!(
            "describe() asks for capabilities the manifest does not declare: {}",
            more.lines().join("; ")
        ));
    }
    if !less.is_empty() {
        out.push(format!(
            "the manifest declares capabilities describe() does not ask for: {}",
            less.lines().join("; ")
        ));
    }
    out
}

/// The imports and exports of a component, for the OCI config.
pub fn interfaces(sandbox: &Sandbox, bytes: &[u8]) -> WasmComponent {
    let engine = sandbox.engine();
    let cache = ArtifactCache::new(engine, ArtifactCache::default_dir());
    let Ok(component) = cache.load(engine, &crate::sandbox::digest_hex(bytes), bytes) else {
        return WasmComponent::default();
    };
    let ty = component.component_type();
    WasmComponent {
        exports: ty.exports(engine).map(|(n, _)| n.to_owned()).collect(),
        imports: ty.imports(engine).map(|(n, _)| n.to_owned()).collect(),
        target: None,
    }
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
        .map_err(|e| {
            PkgError::Build(format!(
                "cannot run `{cargo}` to build {}: {e}; hint: install Rust (rustup), or build the component yourself and set `component` in {MANIFEST_FILE}",
                dir.display()
            ))
        })?;
    if !output.status.success() {
        return Err(PkgError::Build(format!(
            "`cargo build --release --target wasm32-wasip2` failed in {} ({}); hint: fix the errors above (`rustup target add wasm32-wasip2` if the target is missing)",
            dir.display(),
            output.status
        )));
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
        [] => Err(PkgError::Build(format!(
            "cargo built no component in {}; hint: the crate needs `crate-type = [\"cdylib\"]` under [lib]",
            dir.display()
        ))),
        _ => Err(PkgError::Build(format!(
            "cargo built several components in {}; hint: set `component` in {MANIFEST_FILE} to the one to package",
            dir.display()
        ))),
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
        return Err(PkgError::Build(format!(
            "{} holds no built package; hint: run `kazi pkg build {}` first",
            path.display(),
            path.display()
        )));
    }
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| PkgError::io("read", &manifest_path, e))?;
    let manifest = Manifest::parse(&manifest_path.display().to_string(), &text)?;
    let component =
        std::fs::read(&component_path).map_err(|e| PkgError::io("read", &component_path, e))?;
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
    fn capability_mismatches_name_both_directions() {
        let declared = Capabilities {
            exec: ["git".to_owned()].into(),
            ..Capabilities::default()
        };
        let manifest = Capabilities {
            env: ["HOME".to_owned()].into(),
            ..Capabilities::default()
        };
        let lines = capability_mismatch(&declared, &manifest);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("run programs: git"), "{lines:?}");
        assert!(
            lines[1].contains("read environment variables: HOME"),
            "{lines:?}"
        );
        assert!(capability_mismatch(&declared, &declared).is_empty());
    }

    #[test]
    fn reading_an_unbuilt_directory_says_to_build() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_built(dir.path()).unwrap_err().to_string();
        assert!(e.contains("kazi pkg build"), "{e}");
    }
}
