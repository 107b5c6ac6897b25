//! The whole authoring path with the real binary: `kazi predicate new demo` →
//! `kazi predicate build` → a goal with `use = "./…/demo.wasm"` → `kazi check`, and
//! `kazi predicate test`, which must print and exit exactly like `kazi predicate eval`.
//!
//! The crate is built into `target/external-guests` (shared with the external
//! predicate test of `tests/`), with this workspace's Cargo.lock copied in, so that
//! after the first run only the scaffolded crate itself is compiled and no network
//! is needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().expect("kazi exits normally"),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// The real binary with a scrubbed environment: what a shell gives a user, plus the
/// toolchain variables rustup's `cargo` needs (HOME is a temp dir).
fn kazi(cwd: &Path, home: &Path, args: &[&str]) -> Run {
    let real_home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let var = |name: &str, fallback: &str| {
        std::env::var_os(name).unwrap_or_else(|| real_home.join(fallback).into_os_string())
    };
    let mut c = Command::new(env!("CARGO_BIN_EXE_kazi"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home)
        .env("KAZI_DB", home.join("kazi.db"))
        .env(
            "KAZI_CACHE",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache"),
        )
        .env("CARGO_HOME", var("CARGO_HOME", ".cargo"))
        .env("RUSTUP_HOME", var("RUSTUP_HOME", ".rustup"))
        .env(
            "CARGO_TARGET_DIR",
            repo_root().join("target/external-guests"),
        )
        // A flag meant for the host must not reach the guest build.
        .env("RUSTFLAGS", "-C link-arg=--kazi-no-such-linker-flag")
        .current_dir(cwd)
        .args(args)
        .stdin(Stdio::null());
    if let Some(t) = std::env::var_os("RUSTUP_TOOLCHAIN") {
        c.env("RUSTUP_TOOLCHAIN", t);
    }
    c.output().unwrap().into()
}

fn sha256_hex(path: &Path) -> String {
    kazi::sandbox::digest_hex(&std::fs::read(path).unwrap())
}

#[test]
fn new_build_check_and_test_a_predicate() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();

    // new
    let new = kazi(home, home, &["predicate", "new", "demo"]);
    assert_eq!(new.code, 0, "{new}");
    assert!(
        new.stdout
            .starts_with("created predicate crate `demo` in demo (kazi-sdk from "),
        "{new}"
    );
    assert!(new.stdout.contains("kazi predicate build"), "{new}");
    let krate = home.join("demo");
    for file in ["Cargo.toml", "src/lib.rs", "README.md", ".gitignore"] {
        assert!(krate.join(file).is_file(), "{file}");
    }
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    let sdk = repo_root().join("sdk").canonicalize().unwrap();
    assert!(
        manifest.contains(&format!("kazi-sdk = {{ path = \"{}\" }}", sdk.display())),
        "{manifest}"
    );
    // The same versions as this workspace: no resolution, no network.
    std::fs::copy(repo_root().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();

    // new refuses what it must not do
    let again = kazi(home, home, &["predicate", "new", "demo"]);
    assert_eq!(again.code, 1, "{again}");
    assert!(again.stderr.contains("is not empty"), "{again}");
    let bad = kazi(home, home, &["predicate", "new", "Demo"]);
    assert_eq!(bad.code, 2, "{bad}");
    assert!(bad.stderr.contains("hint: a name is"), "{bad}");

    // build
    let build = kazi(&krate, home, &["predicate", "build"]);
    assert_eq!(build.code, 0, "{build}");
    let component = repo_root().join("target/external-guests/wasm32-wasip2/release/demo.wasm");
    let size = std::fs::metadata(&component).unwrap().len();
    assert_eq!(
        build.stdout,
        format!(
            "built predicate `demo` 0.1.0: a workspace file contains a text\n  \
             component  {}\n  \
             size       {:.1} KiB ({size} bytes)\n  \
             sha256     {}\n",
            component.display(),
            size as f64 / 1024.0,
            sha256_hex(&component)
        ),
        "{build}"
    );
    assert!(
        build.stderr.contains("building `demo` for wasm32-wasip2"),
        "{build}"
    );

    // a goal that uses it
    let ws = home.join("ws");
    std::fs::create_dir_all(ws.join("predicates")).unwrap();
    std::fs::copy(&component, ws.join("predicates/demo.wasm")).unwrap();
    std::fs::write(ws.join("notes.txt"), "not yet\n").unwrap();
    let goal = "id = \"authored\"\n\n[[predicate]]\nid = \"notes-done\"\nuse = \"./predicates/demo.wasm\"\npath = \"notes.txt\"\ntext = \"done\"\n";
    std::fs::write(ws.join("kazi.toml"), goal).unwrap();
    let check = kazi(&ws, home, &["check", "kazi.toml"]);
    assert_eq!(check.code, 1, "{check}");
    assert!(
        check
            .stdout
            .contains("FAIL  notes-done: notes.txt does not contain \"done\""),
        "{check}"
    );
    std::fs::write(ws.join("notes.txt"), "all done\n").unwrap();
    let check = kazi(&ws, home, &["check", "kazi.toml"]);
    assert_eq!(check.code, 0, "{check}");
    assert!(
        check
            .stdout
            .contains("PASS  notes-done: notes.txt contains \"done\" at line 1"),
        "{check}"
    );
    // Its config is checked against the schema it declares.
    std::fs::write(ws.join("kazi.toml"), goal.replace("text =", "txt =")).unwrap();
    let typo = kazi(&ws, home, &["check", "kazi.toml"]);
    assert_eq!(typo.code, 5, "{typo}");
    assert!(typo.stderr.contains("kazi.toml:"), "{typo}");

    // test = build + eval: the same stdout and exit code as eval
    let ws_arg = ws.display().to_string();
    let component_arg = component.display().to_string();
    for (config, code) in [
        (r#"{"path":"notes.txt","text":"done"}"#, 0),
        (r#"{"path":"notes.txt","text":"never"}"#, 1),
        (r#"{"path":"missing.txt","text":"done"}"#, 1),
    ] {
        for json in [false, true] {
            let mut flags = vec!["-w", ws_arg.as_str(), "--config", config];
            if json {
                flags.push("--json");
            }
            let mut test_args = vec!["predicate", "test"];
            test_args.extend(&flags);
            let test = kazi(&krate, home, &test_args);
            let mut eval_args = vec!["predicate", "eval", component_arg.as_str()];
            eval_args.extend(&flags);
            let eval = kazi(&krate, home, &eval_args);
            assert_eq!(test.code, code, "{test}");
            assert_eq!(
                (test.code, &test.stdout),
                (eval.code, &eval.stdout),
                "{test}\n{eval}"
            );
        }
    }
    let usage = kazi(&krate, home, &["predicate", "test", "--config", "[]"]);
    assert_eq!(usage.code, 2, "{usage}");
    assert!(
        !usage.stderr.contains("building"),
        "flags are checked first: {usage}"
    );

    // build errors
    let not_a_crate = kazi(&ws, home, &["predicate", "build"]);
    assert_eq!(not_a_crate.code, 2, "{not_a_crate}");
    assert!(
        not_a_crate.stderr.contains("there is no Cargo.toml"),
        "{not_a_crate}"
    );
    let lib = krate.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, source.replace("Ok(match", "Ok(matc")).unwrap();
    let broken = kazi(&krate, home, &["predicate", "test", "-w", &ws_arg]);
    assert_eq!(broken.code, 5, "{broken}");
    assert!(
        broken
            .stderr
            .contains("failed to build `demo` for wasm32-wasip2"),
        "{broken}"
    );
    assert!(broken.stdout.is_empty(), "{broken}");
    std::fs::write(&lib, source).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        manifest.replace("[\"cdylib\", \"rlib\"]", "[\"rlib\"]"),
    )
    .unwrap();
    let rlib = kazi(&krate, home, &["predicate", "build"]);
    assert_eq!(rlib.code, 5, "{rlib}");
    assert!(
        rlib.stderr.contains("its library is not a cdylib"),
        "{rlib}"
    );
}
