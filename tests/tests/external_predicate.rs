//! A predicate written outside this repository against `sdk/` builds with a plain
//! `cargo build --target wasm32-wasip2` and runs in kazi: through `kazi predicate
//! eval` and from a goal with `use = "./….wasm"` checked by `kazi check`.

use std::path::{Path, PathBuf};
use std::process::Command;

use kazi_tests::{Kazi, repo_root};
use serde_json::json;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "target" {
                copy_dir(&e.path(), &target);
            }
        } else if e.file_name() != "Cargo.lock" {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Build the example crate from a copy outside the repository; returns the component.
fn build_outside(dir: &Path) -> PathBuf {
    copy_dir(&repo_root().join("examples/no-todo-predicate"), dir);
    let manifest = dir.join("Cargo.toml");
    let sdk = repo_root().join("sdk");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "path = \"../../sdk\"",
        &format!("path = {:?}", sdk.display().to_string()),
    );
    std::fs::write(&manifest, text).unwrap();
    // A shared target dir keeps later runs fast; the crate itself lives in `dir`.
    let target = repo_root().join("target/external-guests");
    let out = Command::new(env!("CARGO"))
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--offline",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the external predicate did not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("wasm32-wasip2/release/no_todo.wasm")
}

#[test]
fn a_predicate_written_outside_the_repository_builds_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = build_outside(&tmp.path().join("no-todo"));
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("lib.rs"), "fn a() {}\nfn b() { todo!() }\n").unwrap();

    let run = Kazi::eval(&wasm, &ws)
        .config(&json!({"files": ["lib.rs"]}))
        .run();
    run.assert_code(1);
    let v = run.json();
    assert_eq!(v["verdict"], "fail", "{run}");
    assert_eq!(v["diagnostics"][0]["line"], 2, "{run}");
    assert_eq!(v["metrics"]["todos"], 1.0);

    std::fs::write(ws.join("lib.rs"), "fn a() {}\n").unwrap();
    Kazi::eval(&wasm, &ws)
        .config(&json!({"files": ["lib.rs"]}))
        .run()
        .assert_code(0);

    // From a goal, with its config validated against the schema it declares.
    std::fs::copy(&wasm, ws.join("no_todo.wasm")).unwrap();
    std::fs::write(
        ws.join("kazi.toml"),
        "id = \"custom\"\n[[predicate]]\nid = \"no-todo\"\nuse = \"./no_todo.wasm\"\nfiles = [\"lib.rs\"]\n",
    )
    .unwrap();
    let check = Kazi::new([
        "check".to_owned(),
        ws.join("kazi.toml").display().to_string(),
        "--json".to_owned(),
    ])
    .run();
    check.assert_code(0);
    assert_eq!(check.json()["predicates"][0]["verdict"], "pass", "{check}");

    std::fs::write(
        ws.join("kazi.toml"),
        "id = \"custom\"\n[[predicate]]\nid = \"no-todo\"\nuse = \"./no_todo.wasm\"\nfile = [\"lib.rs\"]\n",
    )
    .unwrap();
    let bad = Kazi::new([
        "check".to_owned(),
        ws.join("kazi.toml").display().to_string(),
    ])
    .run();
    bad.assert_code(5);
    assert!(bad.stderr.contains("`files` is required"), "{bad}");
    assert!(bad.stderr.contains("did you mean `files`?"), "{bad}");
}
