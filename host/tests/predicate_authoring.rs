//! The whole authoring path with the real binary: `kazi predicate new demo` →
//! `kazi predicate build` → a goal with `use = "./…/demo.wasm"` → `kazi check`, and
//! `kazi predicate test`, which must print and exit exactly like `kazi predicate eval`;
//! and the same with a copy of the binary that cannot see this checkout at all.
//!
//! The crates are built into `target/external-guests` (shared with the external
//! predicate test of `tests/`) with `CARGO_NET_OFFLINE`, so that after the first run
//! only the scaffolded crate itself is compiled and no network is needed.

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
        .env("CARGO_NET_OFFLINE", "true")
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

/// Fail if any file under `dir` names `path` (the scaffold must not point back into
/// the checkout kazi was built from).
fn assert_no_file_mentions(dir: &Path, path: &Path) {
    let needle = path.display().to_string();
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                if e.file_name() != "target" {
                    stack.push(p);
                }
            } else {
                seen += 1;
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
                assert!(
                    !text.contains(&needle),
                    "{} mentions the checkout {needle}",
                    p.display()
                );
            }
        }
    }
    assert!(seen > 5, "the scaffold has only {seen} files");
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
        new.stdout.starts_with(
            "created predicate crate `demo` in demo\n  Cargo.toml, src/lib.rs, README.md, .gitignore\n  kazi-sdk/: kazi-sdk 0.1.0 (sha256:"
        ),
        "{new}"
    );
    assert!(new.stdout.contains("kazi predicate build"), "{new}");
    assert!(new.stdout.contains("kazi pkg init --namespace"), "{new}");
    let krate = home.join("demo");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "README.md",
        ".gitignore",
        "kazi-sdk/Cargo.toml",
        "kazi-sdk/src/lib.rs",
    ] {
        assert!(krate.join(file).is_file(), "{file}");
    }
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("kazi-sdk = { path = \"kazi-sdk\" }"),
        "{manifest}"
    );
    assert_no_file_mentions(&krate, &repo_root());

    // sdk: the crate's copy against this kazi's
    let same = kazi(&krate, home, &["predicate", "sdk"]);
    assert_eq!(same.code, 0, "{same}");
    assert!(same.stdout.ends_with("the same\n"), "{same}");
    let sdk_lib = krate.join("kazi-sdk/src/lib.rs");
    let original = std::fs::read_to_string(&sdk_lib).unwrap();
    std::fs::write(&sdk_lib, format!("{original}\n// edited\n")).unwrap();
    let differs = kazi(home, home, &["predicate", "sdk", "demo"]);
    assert_eq!(differs.code, 1, "{differs}");
    assert!(differs.stdout.ends_with("different\n"), "{differs}");
    assert!(
        differs
            .stderr
            .contains("`kazi predicate sdk demo --update` writes this kazi's SDK"),
        "{differs}"
    );
    let update = kazi(home, home, &["predicate", "sdk", "demo", "--update"]);
    assert_eq!(update.code, 0, "{update}");
    assert_eq!(std::fs::read_to_string(&sdk_lib).unwrap(), original);
    assert_eq!(kazi(&krate, home, &["predicate", "sdk"]).code, 0);
    let not_a_crate = kazi(home, home, &["predicate", "sdk"]);
    assert_eq!(not_a_crate.code, 2, "{not_a_crate}");
    assert!(
        not_a_crate.stderr.contains("there is no Cargo.toml in"),
        "{not_a_crate}"
    );

    // new refuses what it must not do
    let again = kazi(home, home, &["predicate", "new", "demo"]);
    assert_eq!(again.code, 1, "{again}");
    assert!(again.stderr.contains("is not empty"), "{again}");
    // Into the current directory, when it is empty.
    let here = home.join("here");
    std::fs::create_dir_all(&here).unwrap();
    let into_cwd = kazi(
        &here,
        home,
        &["predicate", "new", "here-demo", "--dir", "."],
    );
    assert_eq!(into_cwd.code, 0, "{into_cwd}");
    assert!(here.join("Cargo.toml").is_file() && here.join("kazi-sdk/Cargo.toml").is_file());
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

/// Whether this machine lets an unprivileged process hide a directory in a mount
/// namespace of its own (`unshare -rm`: a user and a mount namespace).
fn can_hide_directories() -> bool {
    Command::new("unshare")
        .args(["-rm", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Mounts an empty tmpfs over `$3` (the checkout), after bind-mounting `$2` (the shared
/// target directory, inside the checkout) at `$1`, checks that the checkout's SDK is
/// gone, then runs the rest of the arguments.
const HIDE_CHECKOUT: &str = r#"set -e
mkdir -p "$1"
mount --bind "$2" "$1"
mount -t tmpfs kazi-hides-its-checkout "$3"
if test -e "$3/sdk/Cargo.toml"; then echo "the checkout is still visible" >&2; exit 99; fi
shift 3
exec "$@""#;

/// Issue 9: a user who installed only the binary can author a predicate. A copy of the
/// binary, run where this checkout is hidden behind an empty tmpfs (when the machine
/// allows it), scaffolds a crate that names no path of the checkout, builds it offline
/// and evaluates it.
#[test]
fn a_binary_that_cannot_see_its_checkout_scaffolds_builds_and_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin/kazi");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_kazi"), &bin).unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let shared_target = repo_root().join("target/external-guests");
    std::fs::create_dir_all(&shared_target).unwrap();
    let hide = can_hide_directories();
    if !hide {
        eprintln!(
            "note: `unshare -rm` is not allowed here, so the checkout stays visible; the scaffold is still checked for any path into it"
        );
    }
    let mounted_target = tmp.path().join("external-guests");
    let real_home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let var = |name: &str, fallback: &str| {
        std::env::var_os(name).unwrap_or_else(|| real_home.join(fallback).into_os_string())
    };
    let run = |cwd: &Path, args: &[&str]| -> Run {
        let mut c = if hide {
            let mut c = Command::new("unshare");
            c.args(["-rm", "sh", "-c", HIDE_CHECKOUT, "sh"])
                .arg(&mounted_target)
                .arg(&shared_target)
                .arg(repo_root())
                .arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", &home)
            .env("KAZI_DB", home.join("kazi.db"))
            .env("KAZI_CACHE", home.join("cache"))
            .env("CARGO_HOME", var("CARGO_HOME", ".cargo"))
            .env("RUSTUP_HOME", var("RUSTUP_HOME", ".rustup"))
            .env(
                "CARGO_TARGET_DIR",
                if hide {
                    &mounted_target
                } else {
                    &shared_target
                },
            )
            .env("CARGO_NET_OFFLINE", "true")
            .current_dir(cwd)
            .stdin(Stdio::null());
        if let Some(t) = std::env::var_os("RUSTUP_TOOLCHAIN") {
            c.env("RUSTUP_TOOLCHAIN", t);
        }
        c.output().unwrap().into()
    };

    let new = run(tmp.path(), &["predicate", "new", "hidden-demo"]);
    assert_eq!(new.code, 0, "{new}");
    let krate = tmp.path().join("hidden-demo");
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("kazi-sdk = { path = \"kazi-sdk\" }"),
        "{manifest}"
    );
    assert_no_file_mentions(&krate, &repo_root());
    assert_no_file_mentions(&krate, &repo_root().canonicalize().unwrap());

    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("notes.txt"), "all done\n").unwrap();
    let test = run(
        &krate,
        &[
            "predicate",
            "test",
            "-w",
            ws.to_str().unwrap(),
            "--config",
            r#"{"path":"notes.txt","text":"done"}"#,
        ],
    );
    assert_eq!(test.code, 0, "{test}");
    assert!(
        test.stdout
            .contains("PASS  hidden-demo: notes.txt contains \"done\" at line 1"),
        "{test}"
    );
}
