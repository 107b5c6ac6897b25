//! What a component says about itself, and where that disagrees with a manifest. A
//! component knows its kind and WIT world (from what it exports) and, through
//! `describe()`, its name, version, config schema and capabilities; `kazi pkg build`
//! takes all of that from it, and both `build` and `kazi pkg add` refuse a manifest
//! that says otherwise.

use std::fmt;

use super::PkgError;
use super::manifest::{Capabilities, Kind};
use super::oci::WasmComponent;
use crate::sandbox::{Sandbox, Source};

/// What a component declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub kind: Kind,
    /// `kazi:predicate/predicate@0.1.0`: the world of the export it has.
    pub world: String,
    /// What `describe()` returns as its name (a profile's id).
    pub name: String,
    pub version: String,
    pub config_schema: serde_json::Value,
    pub capabilities: Capabilities,
}

/// Load `source` and ask it what it is. Its kind and world come from what it exports;
/// a component that exports neither a predicate nor a profile is loaded as `hint`
/// (or a predicate), so that the sandbox's message says what it is instead.
pub async fn inspect(
    sandbox: &Sandbox,
    source: &Source,
    hint: Option<Kind>,
) -> Result<Found, PkgError> {
    let exports = interfaces(&source.bytes).exports;
    let mut kazi: Vec<(Kind, String)> = exports.iter().filter_map(|e| Kind::of_export(e)).collect();
    // A component with both exports is taken as what the manifest says it is.
    if let Some(k) = hint {
        kazi.sort_by_key(|(kind, _)| *kind != k);
    }
    let kind = kazi
        .first()
        .map(|(k, _)| *k)
        .or(hint)
        .unwrap_or(Kind::Predicate);
    let load = |source: crate::sandbox::SandboxError| PkgError::Load { what: kind, source };
    let (name, version, config_schema, capabilities) = match kind {
        Kind::Predicate => {
            let p = sandbox.load_predicate(source).await.map_err(load)?;
            let info = std::sync::Arc::unwrap_or_clone(p.info);
            (
                info.name,
                info.version,
                info.config_schema,
                Capabilities::from_grants(&info.capabilities),
            )
        }
        Kind::Profile => {
            let p = sandbox.load_profile(source).await.map_err(load)?;
            let properties: serde_json::Map<String, serde_json::Value> = p
                .info
                .options
                .iter()
                .map(|o| (o.clone(), serde_json::json!({})))
                .collect();
            (
                p.info.id,
                p.info.version,
                serde_json::json!({"type": "object", "properties": properties}),
                Capabilities::default(),
            )
        }
    };
    // The sandbox loaded it, so it has an export of this kind; were the exports not
    // readable, there is no world to publish.
    let world = kazi
        .into_iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, w)| w)
        .ok_or_else(|| PkgError::Describe {
            component: source.label.clone().into(),
            problem: format!(
                "it loads as a {kind}, but which version of the {kind} interface it exports cannot be read; hint: rebuild it with kazi-sdk"
            ),
        })?;
    Ok(Found {
        kind,
        world,
        name,
        version,
        config_schema,
        capabilities,
    })
}

/// The imports and exports of a component, read from its binary without compiling
/// it; empty when it cannot be read (loading it then says why).
pub fn interfaces(bytes: &[u8]) -> WasmComponent {
    let mut out = WasmComponent::default();
    // Only the outer component's: nested modules and components have their own.
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else {
            return WasmComponent::default();
        };
        match payload {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentExportSection(reader) if depth == 0 => {
                out.exports
                    .extend(reader.into_iter().flatten().map(|e| e.name.name.to_owned()));
            }
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                out.imports
                    .extend(reader.into_iter().flatten().map(|i| i.name.name.to_owned()));
            }
            _ => {}
        }
    }
    out
}

/// A manifest key whose value the component contradicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The key, as written in `kazi-package.toml`.
    pub field: &'static str,
    /// What the manifest says.
    pub manifest: String,
    /// What the component says.
    pub component: String,
    /// How to make them agree.
    pub fix: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: the manifest says {}, the component says {}; fix: {}",
            self.field, self.manifest, self.component, self.fix
        )
    }
}

/// Mismatches as an indented list, one per line.
pub fn bullets(problems: &[Mismatch]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Mismatches as an indented list of facts, without the author's fixes (for whoever
/// installs a package).
pub fn facts(problems: &[Mismatch]) -> String {
    problems
        .iter()
        .map(|p| {
            format!(
                "  - `{}`: the manifest says {}, the component says {}",
                p.field, p.manifest, p.component
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a manifest says about a component; `None` where it says nothing.
#[derive(Debug, Clone, Default)]
pub struct Expected<'a> {
    pub namespace: Option<&'a str>,
    /// The part after `:`.
    pub name: Option<&'a str>,
    pub version: Option<&'a semver::Version>,
    pub kind: Option<Kind>,
    pub world: Option<&'a str>,
    pub capabilities: Option<&'a Capabilities>,
    pub config_schema: Option<&'a serde_json::Value>,
}

/// For people: capabilities as `run programs: git; reach hosts: …`.
fn capability_text(c: &Capabilities) -> String {
    let lines = c.lines();
    if lines.is_empty() {
        "nothing beyond reading the workspace".to_owned()
    } else {
        lines.join("; ")
    }
}

/// Where `expected` and `found` disagree, key by key.
pub fn compare(expected: &Expected<'_>, found: &Found) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut add = |field, manifest: String, component: String, fix: &str| {
        out.push(Mismatch {
            field,
            manifest,
            component,
            fix: fix.to_owned(),
        });
    };
    if let Some(k) = expected.kind
        && k != found.kind
    {
        add(
            "kind",
            format!("`{k}`"),
            format!("`{}`", found.kind),
            "remove `kind`: kazi reads it from the component",
        );
    }
    if let Some(w) = expected.world
        && w != found.world
    {
        add(
            "world",
            format!("`{w}`"),
            format!("`{}`", found.world),
            "remove `world`: kazi reads it from the component",
        );
    }
    // describe() may return the bare name or the full `namespace:name`.
    let (found_ns, found_name) = match found.name.split_once(':') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, found.name.as_str()),
    };
    if let Some(n) = expected.name
        && n != found_name
    {
        add(
            "name",
            format!("`{}:{n}`", expected.namespace.unwrap_or("?")),
            format!("`{}` (describe())", found.name),
            "remove `name` and keep `namespace`, or make describe() return the name after the `:`",
        );
    }
    if let (Some(ns), Some(fns)) = (expected.namespace, found_ns)
        && ns != fns
    {
        add(
            "namespace",
            format!("`{ns}`"),
            format!("`{fns}` (describe() returns `{}`)", found.name),
            "make `namespace` and the namespace in describe()'s name the same",
        );
    }
    if let Some(v) = expected.version
        && found.version.parse::<semver::Version>().ok().as_ref() != Some(v)
    {
        add(
            "version",
            format!("`{v}`"),
            format!("`{}` (describe())", found.version),
            "remove `version`: kazi takes it from describe() (a kazi-sdk crate returns the version in its Cargo.toml)",
        );
    }
    if let Some(c) = expected.capabilities
        && *c != found.capabilities
    {
        add(
            "capabilities",
            capability_text(c),
            format!("{} (describe())", capability_text(&found.capabilities)),
            "remove [capabilities]: kazi takes them from describe(), and whoever installs the package sees them",
        );
    }
    if let Some(s) = expected.config_schema
        && *s != found.config_schema
    {
        add(
            "config_schema",
            "a schema that differs from describe()'s".to_owned(),
            describe_schema(&found.config_schema),
            "remove `config_schema`: describe()'s schema is published as is",
        );
    }
    out
}

/// A schema, shortened for a message.
fn describe_schema(schema: &serde_json::Value) -> String {
    let text = schema.to_string();
    if text.len() > 80 {
        format!("`{}…`", text.chars().take(80).collect::<String>())
    } else {
        format!("`{text}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found() -> Found {
        Found {
            kind: Kind::Predicate,
            world: "kazi:predicate/predicate@0.1.0".into(),
            name: "has-text".into(),
            version: "1.0.0".into(),
            config_schema: serde_json::json!({"type": "object"}),
            capabilities: Capabilities::default(),
        }
    }

    #[test]
    fn a_manifest_that_says_nothing_agrees_with_any_component() {
        assert!(compare(&Expected::default(), &found()).is_empty());
    }

    #[test]
    fn a_manifest_that_says_the_same_agrees() {
        let f = found();
        let v = semver::Version::new(1, 0, 0);
        let caps = Capabilities::default();
        let e = Expected {
            namespace: Some("acme"),
            name: Some("has-text"),
            version: Some(&v),
            kind: Some(Kind::Predicate),
            world: Some("kazi:predicate/predicate@0.1.0"),
            capabilities: Some(&caps),
            config_schema: Some(&f.config_schema),
        };
        assert!(compare(&e, &f).is_empty());
        // describe() may return the full name.
        let full = Found {
            name: "acme:has-text".into(),
            ..found()
        };
        assert!(compare(&e, &full).is_empty());
    }

    #[test]
    fn every_contradiction_names_the_key_both_values_and_the_fix() {
        let v = semver::Version::new(2, 0, 0);
        let caps = Capabilities {
            exec: ["git".to_owned()].into(),
            ..Capabilities::default()
        };
        let schema = serde_json::json!({"type": "string"});
        let e = Expected {
            namespace: Some("beta"),
            name: Some("other"),
            version: Some(&v),
            kind: Some(Kind::Profile),
            world: Some("kazi:predicate/predicate@0.2.0"),
            capabilities: Some(&caps),
            config_schema: Some(&schema),
        };
        let f = Found {
            name: "acme:has-text".into(),
            ..found()
        };
        let problems = compare(&e, &f);
        let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "kind",
                "world",
                "name",
                "namespace",
                "version",
                "capabilities",
                "config_schema"
            ]
        );
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text[4],
            "`version`: the manifest says `2.0.0`, the component says `1.0.0` (describe()); fix: remove `version`: kazi takes it from describe() (a kazi-sdk crate returns the version in its Cargo.toml)"
        );
        assert!(
            text[5].contains("the manifest says run programs: git, the component says nothing beyond reading the workspace (describe())"),
            "{}",
            text[5]
        );
        assert!(
            text[1].contains("`kazi:predicate/predicate@0.2.0`"),
            "{}",
            text[1]
        );
        assert!(text[2].contains("`beta:other`") && text[2].contains("`acme:has-text`"));
        assert!(bullets(&problems).starts_with("  - `kind`: the manifest says `profile`"));
        // A version describe() gives that is not semver never matches.
        let odd = Found {
            version: "one".into(),
            ..found()
        };
        let e = Expected {
            version: Some(&v),
            ..Expected::default()
        };
        assert_eq!(compare(&e, &odd)[0].component, "`one` (describe())");
    }

    #[tokio::test]
    async fn components_say_what_they_are_whatever_the_manifest_hints() {
        let sandbox = Sandbox::new(None).unwrap();
        let file = crate::builtins::predicate("file").unwrap();
        let f = inspect(&sandbox, &file, None).await.unwrap();
        assert_eq!((f.kind, f.name.as_str()), (Kind::Predicate, "file"));
        assert!(
            f.world.starts_with("kazi:predicate/predicate@"),
            "{}",
            f.world
        );
        assert_eq!(f.config_schema["type"], "object");
        // A manifest that says "profile" does not make a predicate one.
        let hinted = inspect(&sandbox, &file, Some(Kind::Profile)).await.unwrap();
        assert_eq!(hinted.kind, Kind::Predicate);

        let command = crate::builtins::profile("command").unwrap();
        let p = inspect(&sandbox, &command, None).await.unwrap();
        assert_eq!((p.kind, p.name.as_str()), (Kind::Profile, "command"));
        assert!(p.world.starts_with("kazi:profile/profile@"), "{}", p.world);
        assert!(p.capabilities.is_empty());

        // What the OCI config lists: the outer component's own imports and exports.
        let i = interfaces(&file.bytes);
        assert_eq!(i.exports.len(), 1, "{:?}", i.exports);
        assert!(i.exports[0].starts_with("kazi:predicate/evaluator@"));
        assert!(
            i.imports.iter().any(|n| n.starts_with("kazi:host/")),
            "{:?}",
            i.imports
        );
        assert!(
            i.imports.iter().any(|n| n.starts_with("wasi:")),
            "{:?}",
            i.imports
        );
        assert!(interfaces(b"junk").exports.is_empty());

        // Not a kazi component: the sandbox's own message.
        let module = Source::new("core.wasm", b"\0asm\x01\0\0\0".to_vec());
        let e = inspect(&sandbox, &module, None).await.unwrap_err();
        assert!(matches!(e, PkgError::Load { .. }), "{e}");
        assert!(e.to_string().contains("core WebAssembly module"), "{e}");
    }
}
