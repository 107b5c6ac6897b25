//! Predicate crates. [`create`] scaffolds one for `kazi predicate new`: a standalone
//! crate on `kazi-sdk` with an example predicate, its config schema and native tests.
//! [`inspect`] and [`build`] compile one for `kazi predicate build` the way kazi
//! builds its own guests ([`kazi_guest_build::cargo_build`]: host compiler flags
//! cleared) and find the component through `cargo metadata`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::sdk::{DIR, Sdk, SdkError};

/// The guest target.
pub const TARGET: &str = kazi_guest_build::TARGET;

/// The dependency lines of a scaffold's `Cargo.toml`: the SDK copied into the crate
/// (see [`super::sdk`]), by a relative path.
pub fn sdk_dependency(sdk: &Sdk) -> String {
    format!(
        "# {}, copied into ./{DIR} by `kazi predicate new`.\n\
         # A newer kazi never changes it: `kazi predicate sdk` compares it with the SDK\n\
         # of the kazi you run, and `kazi predicate sdk --update` replaces it.\n\
         kazi-sdk = {{ path = \"{DIR}\" }}\n",
        sdk.describe()
    )
}

/// Why a crate could not be scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("failed to create predicate `{name}`: {reason}; hint: {hint}")]
    InvalidName {
        name: String,
        reason: String,
        hint: String,
    },
    #[error(
        "failed to create a predicate crate in {}: the directory is not empty; hint: pick a new name or pass --dir DIR",
        dir.display()
    )]
    NotEmpty { dir: PathBuf },
    #[error("failed to write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Sdk(#[from] SdkError),
}

/// Names a crate cannot have: Rust keywords, built-in crates, and the SDK itself.
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "kazi_sdk",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// Check a predicate name: `[a-z][a-z0-9-]*`, at most 64 characters, not reserved.
pub fn validate_name(name: &str) -> Result<(), ScaffoldError> {
    let invalid = |reason: String, hint: &str| {
        Err(ScaffoldError::InvalidName {
            name: name.to_owned(),
            reason,
            hint: hint.to_owned(),
        })
    };
    let shape = "a name is a lower-case letter followed by lower-case letters, digits and `-`, like `no-todo`";
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return invalid("it does not start with a lower-case letter".into(), shape);
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return invalid(format!("`{c}` is not allowed in a name"), shape);
    }
    if name.len() > 64 {
        return invalid("it is longer than 64 characters".into(), shape);
    }
    if RESERVED.contains(&lib_name(name).as_str()) {
        return invalid(
            "it is a Rust keyword or the name of a crate it would clash with".into(),
            "add a word, like `check-` in front",
        );
    }
    Ok(())
}

/// The library (and component file) name: `-` becomes `_`.
pub fn lib_name(name: &str) -> String {
    name.replace('-', "_")
}

/// The Rust type of the example predicate: `no-todo` becomes `NoTodo`.
pub fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

const CARGO_TOML: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the WebAssembly component kazi loads; rlib: so `cargo test` runs the
# predicate natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
{{sdk}}# The config is one Rust type: its parsing (serde) and its JSON Schema (schemars).
serde = { version = "1", features = ["derive"] }
schemars = "1"

[dev-dependencies]
tempfile = "3"

[profile.release]
# A smaller component: no debug info in the .wasm.
strip = "debuginfo"

# A crate of its own, never a member of an enclosing workspace.
[workspace]
"#;

const LIB_RS: &str = r#"//! `{{name}}`: a kazi predicate that passes when a workspace file contains a text.
//!
//! Make it check what you need: change `Config` (the keys a goal may set) and
//! `evaluate`. `kazi predicate build` compiles the component; `kazi predicate test`
//! builds it and evaluates it once.

use kazi_sdk::prelude::*;

/// The config a goal gives this predicate. Its JSON Schema (doc comments become the
/// descriptions), the checks kazi runs when it loads a goal (unknown keys with a "did
/// you mean", wrong types, each at its line in the goal file) and the parsing in
/// `evaluate` all come from this one type.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A workspace-relative file.
    pub path: String,
    /// What the file must contain.
    #[schemars(length(min = 1))]
    pub text: String,
}

pub struct {{Type}};

impl Predicate<Config> for {{Type}} {
    fn describe() -> Description {
        Description {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "a workspace file contains a text".into(),
            // Reading the workspace needs no grant. Ask for `exec`, `net`, `env` or
            // `fs_write` here; a goal then grants them under `[predicate.allow]`.
            capabilities: Capabilities::default(),
            // The config schema comes from `Config`.
            ..Description::default()
        }
    }

    /// What the type cannot say, checked when the goal loads (before anything runs):
    /// each error names its key and shows at that key's line in the goal file.
    fn validate(config: &Config) -> Vec<ConfigError> {
        match Workspace::check_relative(&config.path) {
            Ok(()) => Vec::new(),
            Err(e) => vec![
                ConfigError::at("path", e.message())
                    .with_hint("write a path relative to the workspace, such as `README.md`"),
            ],
        }
    }

    fn evaluate(config: Config, cx: &Context) -> Result<Verdict> {
        let (path, text) = (&config.path, &config.text);
        // An `Err` (a file that cannot be read) is an `error` verdict: the predicate
        // could not judge. `fail` means the workspace is not right yet.
        let content = cx.workspace().read_to_string(path)?;
        Ok(match content.find(text.as_str()) {
            Some(at) => {
                let line = content[..at].matches('\n').count() + 1;
                Verdict::pass(format!("{path} contains {text:?} at line {line}"))
            }
            None => {
                let verdict = Verdict::fail(format!("{path} does not contain {text:?}"));
                verdict.with_diagnostic(Some(path), None, format!("{text:?} is missing"))
            }
        })
    }
}

export_predicate!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluate(file: Option<&str>) -> Verdict {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = file {
            std::fs::write(dir.path().join("notes.txt"), text).unwrap();
        }
        let cx = Context::new("{{name}}", 0, dir.path());
        let config = Config::from_value(json!({"path": "notes.txt", "text": "done"})).unwrap();
        let result = {{Type}}::evaluate(config, &cx);
        result.unwrap_or_else(|e| Verdict::error(e.to_string()))
    }

    #[test]
    fn passes_when_the_file_contains_the_text() {
        let v = evaluate(Some("first\nall done\n"));
        assert_eq!(v.outcome, Outcome::Pass);
        assert!(v.summary.contains("line 2"), "{}", v.summary);
    }

    #[test]
    fn fails_when_the_text_is_missing() {
        let v = evaluate(Some("not yet\n"));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.diagnostics[0].file.as_deref(), Some("notes.txt"));
    }

    #[test]
    fn a_missing_file_is_an_error() {
        assert_eq!(evaluate(None).outcome, Outcome::Error);
    }

    /// What kazi reports when it loads a goal with this config, as it would.
    #[test]
    fn bad_configs_are_refused_at_load() {
        let errors = check_config::<{{Type}}, Config>(&json!({"path": "../x", "txt": "a"}));
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/text", "/txt"], "{errors:?}");
        assert_eq!(errors[1].hint.as_deref(), Some("did you mean `text`?"));
        let errors = check_config::<{{Type}}, Config>(&json!({"path": "../x", "text": "a"}));
        assert_eq!(errors[0].pointer, "/path");
        assert!(check_config::<{{Type}}, Config>(&json!({"path": "a", "text": "b"})).is_empty());
    }
}
"#;

const README_MD: &str = r#"# {{name}}

A [kazi](https://github.com/kazi-dev/kazi) predicate: it passes when a workspace
file contains a text. Change `src/lib.rs` to check what you need.

```sh
cargo test                     # the native unit tests
kazi predicate build           # the component: target/wasm32-wasip2/release/{{lib}}.wasm
kazi predicate test -w path/to/workspace --config '{"path":"README.md","text":"kazi"}'
```

`kazi predicate build` runs `cargo build --release --target wasm32-wasip2` and
checks that the result is a component kazi can load; `kazi predicate test` builds
it and evaluates it once against a workspace, exactly like `kazi predicate eval`
(exit 0 on pass, 1 on fail or error).

Use it from a goal (the path is relative to the goal file):

```toml
[[predicate]]
id = "{{name}}"
use = "./target/wasm32-wasip2/release/{{lib}}.wasm"
path = "README.md"
text = "kazi"
```

Everything except the goal-level keys (`id`, `use`, `description`, `guard`,
`live`, `held_out`, `ratchet`, `timeout`, `limits`, `allow`) is this predicate's
config: the `Config` type in `src/lib.rs`. kazi checks it when the goal loads
(unknown keys, wrong types, and what `validate` refuses), and reports each problem
at its line in the goal file, before anything runs.
"#;

const GITIGNORE: &str = "/target/\n";

/// The files of a new predicate crate, as (relative path, content): the crate's own
/// and, under [`DIR`], the SDK it builds against.
pub fn files(name: &str, sdk: &Sdk) -> Vec<(String, Vec<u8>)> {
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{lib}}", &lib_name(name))
            .replace("{{Type}}", &type_name(name))
            .replace("{{sdk}}", &sdk_dependency(sdk))
            .into_bytes()
    };
    let mut out = vec![
        ("Cargo.toml".to_owned(), fill(CARGO_TOML)),
        ("src/lib.rs".to_owned(), fill(LIB_RS)),
        ("README.md".to_owned(), fill(README_MD)),
        (".gitignore".to_owned(), GITIGNORE.as_bytes().to_vec()),
    ];
    out.extend(
        sdk.files
            .iter()
            .map(|f| (format!("{DIR}/{}", f.path), f.bytes.clone())),
    );
    out
}

/// Create the crate `name` in `dir`, which must be missing or empty, with a copy of
/// `sdk`. The files are written into a staging directory first, so that a failure
/// leaves nothing behind: a missing `dir` is then the staging directory renamed; an
/// existing empty one (perhaps the current directory) receives its entries one rename
/// each. Returns the crate's own files, relative to `dir` (the SDK's are under
/// [`DIR`]).
pub fn create(dir: &Path, name: &str, sdk: &Sdk) -> Result<Vec<String>, ScaffoldError> {
    use std::os::unix::fs::PermissionsExt;
    validate_name(name)?;
    let not_empty = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if not_empty || dir.is_file() {
        return Err(ScaffoldError::NotEmpty {
            dir: dir.to_owned(),
        });
    }
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ScaffoldError::Write { path, source }
    };
    let exists = dir.is_dir();
    // Staging on the same file system as `dir`, so that renames are atomic.
    let staging_parent = if exists {
        dir
    } else {
        match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    };
    std::fs::create_dir_all(staging_parent).map_err(write_err(staging_parent))?;
    // Mode 0777 less the umask, like any directory the user creates.
    let staging = tempfile::Builder::new()
        .prefix(".kazi-new-")
        .permissions(std::fs::Permissions::from_mode(0o777))
        .tempdir_in(staging_parent)
        .map_err(write_err(staging_parent))?;
    let mut written = Vec::new();
    for (rel, bytes) in files(name, sdk) {
        let path = staging.path().join(&rel);
        let parent = path.parent().unwrap_or(staging.path());
        std::fs::create_dir_all(parent)
            .and_then(|()| std::fs::write(&path, bytes))
            .map_err(write_err(&dir.join(&rel)))?;
        if !rel.starts_with(&format!("{DIR}/")) {
            written.push(rel);
        }
    }
    if exists {
        let entries = std::fs::read_dir(staging.path()).map_err(write_err(staging.path()))?;
        for entry in entries {
            let entry = entry.map_err(write_err(staging.path()))?;
            let to = dir.join(entry.file_name());
            std::fs::rename(entry.path(), &to).map_err(write_err(&to))?;
        }
        // `staging`, now empty, is removed when dropped.
        return Ok(written);
    }
    // A directory created meanwhile makes the rename fail; `staging` is then removed
    // when dropped.
    std::fs::rename(staging.path(), dir).map_err(|source| {
        if dir.exists() {
            ScaffoldError::NotEmpty {
                dir: dir.to_owned(),
            }
        } else {
            ScaffoldError::Write {
                path: dir.to_owned(),
                source,
            }
        }
    })?;
    let _ = staging.keep();
    Ok(written)
}

/// Why a predicate crate could not be built into a component.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The directory is not a crate (a usage error).
    #[error(
        "failed to build a predicate in {}: there is no Cargo.toml; hint: pass the crate's directory, or create one with `kazi predicate new NAME`",
        dir.display()
    )]
    NoManifest { dir: PathBuf },
    /// cargo could not be started.
    #[error(
        "failed to run `{program}`: {source}; hint: install Rust with rustup (https://rustup.rs)"
    )]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("failed to read the crate {} with `cargo metadata`: {reason}", manifest.display())]
    Metadata { manifest: PathBuf, reason: String },
    #[error(
        "failed to build a predicate from {}: it is a workspace without a package of its own; hint: pass the predicate crate's directory",
        manifest.display()
    )]
    NoPackage { manifest: PathBuf },
    #[error(
        "failed to build a component from `{package}`: its library is not a cdylib; hint: add `[lib] crate-type = [\"cdylib\", \"rlib\"]` to {}",
        manifest.display()
    )]
    NoCdylib { package: String, manifest: PathBuf },
    #[error(
        "failed to build `{package}` for {TARGET} ({status}); cargo's messages are above; hint: `rustup target add {TARGET}` if the target is missing"
    )]
    Cargo { package: String, status: String },
    #[error("failed to read the component {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "failed to build a component: {} is a core WebAssembly module or not WebAssembly at all; hint: build with kazi-sdk for {TARGET}, and check that no RUSTFLAGS configured in .cargo/config.toml reach the build",
        path.display()
    )]
    NotComponent { path: PathBuf },
}

/// A predicate crate, as `cargo metadata` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    /// The crate's directory.
    pub dir: PathBuf,
    pub manifest: PathBuf,
    pub package: String,
    pub version: String,
    /// The cdylib's name, which names the component file.
    pub lib: String,
    /// Where cargo builds it (honours `CARGO_TARGET_DIR` and `.cargo/config.toml`).
    pub target_dir: PathBuf,
}

impl Crate {
    /// The component `cargo build --release --target wasm32-wasip2` writes.
    pub fn component_path(&self) -> PathBuf {
        kazi_guest_build::component_path(&self.target_dir, &self.lib)
    }
}

/// The program that builds guests: `cargo` on PATH, so that a crate's own
/// `rust-toolchain.toml` is honoured through rustup.
pub const CARGO: &str = "cargo";

/// Read the crate in `dir` with `cargo metadata` (no dependency resolution, so no
/// network).
pub fn inspect(dir: &Path) -> Result<Crate, BuildError> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(BuildError::NoManifest {
            dir: dir.to_owned(),
        });
    }
    let manifest = manifest.canonicalize().map_err(|e| BuildError::Metadata {
        manifest: manifest.clone(),
        reason: e.to_string(),
    })?;
    let dir = manifest.parent().expect("a file has a parent").to_owned();
    let out = Command::new(CARGO)
        .current_dir(&dir)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| BuildError::Spawn {
            program: CARGO.to_owned(),
            source,
        })?;
    let metadata_error = |reason: String| BuildError::Metadata {
        manifest: manifest.clone(),
        reason,
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(metadata_error(stderr.trim().to_owned()));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| metadata_error(format!("its output is not JSON: {e}")))?;
    parse_metadata(&v, &manifest).map(|(package, version, lib, target_dir)| Crate {
        dir,
        manifest: manifest.clone(),
        package,
        version,
        lib,
        target_dir,
    })
}

/// (package, version, cdylib name, target directory) of the package at `manifest`.
fn parse_metadata(
    v: &serde_json::Value,
    manifest: &Path,
) -> Result<(String, String, String, PathBuf), BuildError> {
    let str_of = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
    let target_dir = PathBuf::from(str_of(v, "target_directory"));
    let package = v["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| Path::new(p["manifest_path"].as_str().unwrap_or_default()) == manifest)
        .ok_or_else(|| BuildError::NoPackage {
            manifest: manifest.to_owned(),
        })?;
    let name = str_of(package, "name");
    let lib = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| {
            t["crate_types"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c == "cdylib"))
        })
        .map(|t| str_of(t, "name"))
        .ok_or_else(|| BuildError::NoCdylib {
            package: name.clone(),
            manifest: manifest.to_owned(),
        })?;
    Ok((name, str_of(package, "version"), lib, target_dir))
}

/// A built component.
#[derive(Debug, Clone)]
pub struct Built {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// `cargo build --release --target wasm32-wasip2` in the crate, with host compiler
/// flags cleared. cargo's progress and errors go to stderr (its stdout too, so that
/// stdout keeps only kazi's own output). Checks that the file is a component; whether
/// it is a kazi predicate is the sandbox's call.
pub fn build(krate: &Crate) -> Result<Built, BuildError> {
    let status = kazi_guest_build::cargo_build(CARGO)
        .current_dir(&krate.dir)
        .arg("--manifest-path")
        .arg(&krate.manifest)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .map_err(|source| BuildError::Spawn {
            program: CARGO.to_owned(),
            source,
        })?;
    if !status.success() {
        return Err(BuildError::Cargo {
            package: krate.package.clone(),
            status: status.to_string(),
        });
    }
    let path = krate.component_path();
    let bytes = std::fs::read(&path).map_err(|source| BuildError::Read {
        path: path.clone(),
        source,
    })?;
    if !kazi_guest_build::is_component(&bytes) {
        return Err(BuildError::NotComponent { path });
    }
    Ok(Built { path, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["demo", "no-todo", "a1", "x-2-y"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "does not start"),
            ("Demo", "does not start"),
            ("1x", "does not start"),
            ("-x", "does not start"),
            ("no_todo", "`_` is not allowed"),
            ("a b", "` ` is not allowed"),
            ("test", "keyword"),
            ("kazi-sdk", "keyword"),
            ("fn", "keyword"),
        ] {
            let e = validate_name(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("hint:"), "{bad}: {e}");
        }
        assert!(validate_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn type_and_lib_names() {
        assert_eq!(type_name("demo"), "Demo");
        assert_eq!(type_name("no-todo"), "NoTodo");
        assert_eq!(type_name("x-2-y"), "X2Y");
        assert_eq!(lib_name("no-todo"), "no_todo");
    }

    /// A small SDK, so that these tests do not depend on the real one.
    fn sdk() -> Sdk {
        Sdk::standalone(
            &[
                (
                    "Cargo.toml",
                    b"[package]\nname = \"kazi-sdk\"\nversion = \"0.9.0\"\n",
                ),
                ("src/lib.rs", b"//! sdk\n"),
                ("wit/predicate.wit", b"package kazi:predicate@0.1.0;\n"),
            ],
            "[workspace]\n",
        )
        .unwrap()
    }

    #[test]
    fn scaffold_files_are_filled_in() {
        let sdk = sdk();
        let scaffold = files("no-todo", &sdk);
        let get = |name: &str| {
            let bytes = &scaffold.iter().find(|(n, _)| n == name).unwrap().1;
            String::from_utf8(bytes.clone()).unwrap()
        };
        let manifest = get("Cargo.toml");
        let cargo: toml::Table = manifest.parse().unwrap();
        assert_eq!(cargo["package"]["name"].as_str(), Some("no-todo"));
        assert_eq!(
            cargo["dependencies"]["kazi-sdk"]["path"].as_str(),
            Some("kazi-sdk")
        );
        assert!(
            manifest.contains(&format!("# {}, copied into ./kazi-sdk", sdk.describe())),
            "{manifest}"
        );
        assert!(cargo["workspace"].as_table().is_some());
        assert_eq!(
            cargo["lib"]["crate-type"].as_array().unwrap().len(),
            2,
            "cdylib and rlib"
        );
        let lib = get("src/lib.rs");
        assert!(lib.contains("pub struct NoTodo;") && lib.contains("export_predicate!(NoTodo);"));
        assert!(lib.contains("Context::new(\"no-todo\", 0, dir.path())"));
        assert!(!lib.contains("{{") && !get("README.md").contains("{{"));
        assert!(get("README.md").contains("release/no_todo.wasm"));
        assert_eq!(get(".gitignore"), "/target/\n");
        // The SDK, file for file, under kazi-sdk/.
        for f in &sdk.files {
            assert_eq!(
                scaffold
                    .iter()
                    .find(|(n, _)| *n == format!("kazi-sdk/{}", f.path))
                    .map(|(_, b)| b),
                Some(&f.bytes),
                "{}",
                f.path
            );
        }
        assert_eq!(scaffold.len(), 4 + sdk.files.len());
    }

    #[test]
    fn create_writes_everything_or_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let sdk = sdk();
        let dir = tmp.path().join("sub/demo");
        let written = create(&dir, "demo", &sdk).unwrap();
        assert_eq!(
            written,
            ["Cargo.toml", "src/lib.rs", "README.md", ".gitignore"]
        );
        assert_eq!(Sdk::read(&dir.join("kazi-sdk")).unwrap(), sdk);
        // A directory like any other (not the 0700 of a temporary one), and no
        // staging directory left behind.
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
        let plain = tmp.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        assert_eq!(mode(&dir), mode(&plain));
        let siblings: Vec<_> = std::fs::read_dir(tmp.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(siblings, ["demo"]);

        let e = create(&dir, "demo", &sdk).unwrap_err();
        assert!(matches!(e, ScaffoldError::NotEmpty { .. }), "{e}");
        // An existing empty directory is fine, and keeps its inode (it may be the
        // current directory of whoever runs kazi).
        use std::os::unix::fs::MetadataExt;
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let inode = std::fs::metadata(&empty).unwrap().ino();
        create(&empty, "demo", &sdk).unwrap();
        assert_eq!(std::fs::metadata(&empty).unwrap().ino(), inode);
        let mut entries: Vec<_> = std::fs::read_dir(&empty)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        entries.sort();
        assert_eq!(
            entries,
            [".gitignore", "Cargo.toml", "README.md", "kazi-sdk", "src"]
        );
        assert_eq!(Sdk::read(&empty.join("kazi-sdk")).unwrap(), sdk);
        // A file in the way, or a parent that cannot be created, leaves nothing.
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(
            create(&file, "demo", &sdk),
            Err(ScaffoldError::NotEmpty { .. })
        ));
        let e = create(&file.join("demo"), "demo", &sdk).unwrap_err();
        assert!(matches!(e, ScaffoldError::Write { .. }), "{e}");
        assert!(e.to_string().contains(&file.display().to_string()), "{e}");
    }

    #[test]
    fn metadata_names_the_package_lib_and_target_dir() {
        let manifest = Path::new("/w/demo/Cargo.toml");
        let v = serde_json::json!({
            "target_directory": "/w/target",
            "packages": [
                {"name": "other", "version": "1.0.0", "manifest_path": "/w/other/Cargo.toml", "targets": []},
                {"name": "demo-x", "version": "0.1.0", "manifest_path": "/w/demo/Cargo.toml",
                 "targets": [{"name": "demo_x", "crate_types": ["cdylib", "rlib"]}]}
            ]
        });
        let (package, version, lib, target) = parse_metadata(&v, manifest).unwrap();
        assert_eq!(
            (package.as_str(), version.as_str(), lib.as_str()),
            ("demo-x", "0.1.0", "demo_x")
        );
        assert_eq!(
            kazi_guest_build::component_path(&target, &lib),
            Path::new("/w/target/wasm32-wasip2/release/demo_x.wasm")
        );
        let no_cdylib = serde_json::json!({"target_directory": "/t", "packages": [
            {"name": "demo", "version": "0.1.0", "manifest_path": "/w/demo/Cargo.toml",
             "targets": [{"name": "demo", "crate_types": ["lib"]}]}]});
        assert!(matches!(
            parse_metadata(&no_cdylib, manifest),
            Err(BuildError::NoCdylib { .. })
        ));
        let virtual_ws = serde_json::json!({"target_directory": "/t", "packages": []});
        assert!(matches!(
            parse_metadata(&virtual_ws, manifest),
            Err(BuildError::NoPackage { .. })
        ));
    }
}
