//! Predicates written in other languages than Rust, from `examples/predicates/`, built
//! with their own toolchains against `sdk/wit` and checked through `kazi check`: they
//! pass, fail, and have their config refused at load with the goal's line and column.
//!
//! Each test builds its example only when its toolchain is here, and says why it is
//! skipped otherwise: componentize-py (`pip install componentize-py==0.25.1`, which
//! `.ci/run` does), and for JavaScript node with componentize-js installed in
//! `examples/predicates/javascript` (`npm install` there). A built component is kept
//! under the target directory, keyed by a hash of its sources, the WIT and the
//! toolchain's version, so the suite pays for a build once; kazi's compiled artifact
//! is cached the same way (`KAZI_CACHE` under the target directory).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn kazi(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kazi"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env(
            "KAZI_CACHE",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache"),
        )
        .current_dir(dir);
    c
}

/// The first line of `program --version`, if it runs.
fn version(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    })
}

/// sha256 of every file under `paths` (sorted) and of `extra`.
fn hash(paths: &[PathBuf], extra: &str) -> String {
    let mut files = Vec::new();
    for p in paths {
        let mut stack = vec![p.clone()];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                for e in std::fs::read_dir(&p).unwrap() {
                    stack.push(e.unwrap().path());
                }
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(f.to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).unwrap());
    }
    h.update(extra.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// The component `name-<hash>.wasm` under the target directory, built by `build` into
/// a temporary path first when it is not there yet.
fn cached(name: &str, key: &str, build: impl FnOnce(&Path) -> Output) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("other-languages");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{key}.wasm"));
    if !path.is_file() {
        let tmp = dir.join(format!("{name}-{key}.{}.tmp.wasm", std::process::id()));
        let out = build(&tmp);
        assert!(
            out.status.success() && tmp.is_file(),
            "building {name} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// `kazi check` of `goal` in a new workspace holding `files`: (exit code, stdout, stderr).
fn check(goal: &str, files: &[(&str, &str)]) -> (i32, String, String) {
    let ws = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let p = ws.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    std::fs::write(ws.path().join("kazi.toml"), goal).unwrap();
    let out = kazi(ws.path())
        .args(["check", "kazi.toml"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_python_predicate_built_with_componentize_py() {
    let Some(tool) = version("componentize-py", &["--version"]) else {
        eprintln!(
            "skipped: componentize-py is not installed (pip install componentize-py==0.25.1)"
        );
        return;
    };
    let example = root().join("examples/predicates/python");
    let wit = root().join("sdk/wit");
    let key = hash(&[example.join("app.py"), wit.clone()], &tool);
    let component = cached("python-max-lines", &key, |out| {
        Command::new("componentize-py")
            .arg("-d")
            .arg(&wit)
            .args([
                "-w",
                "kazi:predicate/predicate",
                "componentize",
                "app",
                "-o",
            ])
            .arg(out)
            .current_dir(&example)
            .output()
            .unwrap()
    });
    let goal = |config: &str| {
        format!(
            "id = \"py\"\n\n[[predicate]]\nid = \"short\"\nuse = \"{}\"\n{config}\n",
            component.display()
        )
    };
    let files = [
        ("src/short.py", "a = 1\nb = 2\n"),
        ("src/long.py", &"x = 1\n".repeat(30)),
    ];

    let (code, out, err) = check(&goal("files = [\"src/short.py\"]\nmax_lines = 10"), &files);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("PASS  short: 1 file(s) within 10 lines (longest: 2)"),
        "{out}"
    );

    let (code, out, err) = check(
        &goal("files = [\"src/short.py\", \"src/long.py\"]\nmax_lines = 10"),
        &files,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("FAIL  short: 1 file(s) longer than 10 lines: src/long.py has 30 lines"),
        "{out}"
    );

    // The component's own validate: JSON pointers become the goal's line and column.
    let (code, out, err) = check(
        &goal("files = [\"src/short.py\", \"../etc/passwd\"]\nmax_line = 10"),
        &files,
    );
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        err.contains(
            "kazi.toml:6:26: predicate \"short\": `files[1]` \"../etc/passwd\" leaves the workspace"
        ),
        "{err}"
    );
    assert!(
        err.contains("kazi.toml:7:1: predicate \"short\": `max_line` is not a known key"),
        "{err}"
    );
    assert!(err.contains("hint: did you mean `max_lines`?"), "{err}");
}

#[test]
fn a_javascript_predicate_built_with_componentize_js() {
    let example = root().join("examples/predicates/javascript");
    let modules = example.join("node_modules/@bytecodealliance/componentize-js");
    let Some(node) = version("node", &["--version"]) else {
        eprintln!("skipped: node is not installed");
        return;
    };
    if !modules.is_dir() {
        eprintln!(
            "skipped: componentize-js is not installed (npm install in examples/predicates/javascript)"
        );
        return;
    }
    if version("git", &["--version"]).is_none() {
        eprintln!("skipped: git is not installed (the example runs `git status`)");
        return;
    }
    let wit = root().join("sdk/wit");
    let installed = std::fs::read_to_string(modules.join("package.json")).unwrap();
    let key = hash(
        &[
            example.join("app.js"),
            example.join("build.mjs"),
            wit.clone(),
        ],
        &format!("{node}{installed}"),
    );
    let component = cached("javascript-git-clean", &key, |out| {
        Command::new("node")
            .arg("build.mjs")
            .arg(&wit)
            .arg(out)
            .current_dir(&example)
            .output()
            .unwrap()
    });
    let goal = format!(
        "id = \"js\"\n\n[[predicate]]\nid = \"clean\"\nuse = \"{}\"\nignore = [\"kazi.toml\"]\n\n[predicate.allow]\nexec = [\"git\"]\n",
        component.display()
    );
    let ws = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(ws.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
    };
    git(&["init", "-q", "."]);
    std::fs::write(ws.path().join("kazi.toml"), &goal).unwrap();
    let run = || {
        let out = kazi(ws.path())
            .args(["check", "kazi.toml"])
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = run();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PASS  clean: the git tree is clean"), "{out}");
    std::fs::write(ws.path().join("new.txt"), "x").unwrap();
    let (code, out) = run();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL  clean: 1 changed or untracked file(s): new.txt"),
        "{out}"
    );
    std::fs::write(
        ws.path().join("kazi.toml"),
        goal.replace("ignore = [\"kazi.toml\"]", "ignore = \"kazi.toml\""),
    )
    .unwrap();
    let (code, out) = run();
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains(
            "kazi.toml:6:1: predicate \"clean\": `ignore` must be a list of path prefixes"
        ),
        "{out}"
    );
}
