//! Embeds the SDK's sources in the `kazi` binary from its build script, so that
//! `kazi predicate new` needs no kazi checkout (`host/src/authoring/sdk.rs` reads
//! what this writes). The directory is embedded generically: whatever files `sdk/`
//! has, so changes to the SDK flow through without touching this list.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The files of the crate in `dir`, relative with `/` separators and sorted: every
/// regular file except build output (`target/`) and hidden files and directories
/// (`.git`, editor swap files), which `cargo package` leaves out too.
///
/// Panics on an unreadable directory or a file name that is not UTF-8: this runs
/// inside a build script, where a panic is how a failure is reported.
pub fn crate_files(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {} to embed it: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
            let path = entry.path();
            let name = entry.file_name();
            let name = name
                .to_str()
                .unwrap_or_else(|| panic!("{} is not a UTF-8 file name", path.display()));
            if name.starts_with('.') || (dir == root && name == "target") {
                continue;
            }
            let meta = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            if meta.is_dir() {
                walk(root, &path, out);
            } else if meta.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .expect("walked from the root")
                    .components()
                    .map(|c| c.as_os_str().to_str().expect("checked above"))
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Rust source that defines `pub const SDK_FILES: &[(&str, &[u8])]` (every file of
/// `root/sdk`, see [`crate_files`]) and `pub const WORKSPACE_MANIFEST: &str` (the
/// root `Cargo.toml`, whose `[workspace.*]` tables the SDK's manifest inherits from).
pub fn sdk_source(root: &Path) -> String {
    let mut code = String::new();
    writeln!(
        code,
        "/// The files of `sdk/` as (relative path, bytes), sorted by path."
    )
    .unwrap();
    writeln!(code, "pub const SDK_FILES: &[(&str, &[u8])] = &[").unwrap();
    for (rel, path) in crate_files(&root.join("sdk")) {
        writeln!(
            code,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    writeln!(code, "];").unwrap();
    writeln!(
        code,
        "/// The workspace's root `Cargo.toml` (what `workspace = true` keys inherit)."
    )
    .unwrap();
    writeln!(
        code,
        "pub const WORKSPACE_MANIFEST: &str = include_str!({:?});",
        root.join("Cargo.toml").display().to_string()
    )
    .unwrap();
    code
}

/// Write [`sdk_source`] to `out` and tell cargo to run the build script again when
/// anything under `sdk/` or the root `Cargo.toml` changes.
pub fn write_sdk(root: &Path, out: &Path) {
    println!("cargo:rerun-if-changed={}", root.join("sdk").display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.toml").display()
    );
    std::fs::write(out, sdk_source(root))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_files_skip_build_output_and_hidden_files() {
        let root = std::env::temp_dir().join(format!("kazi-embed-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let sdk = root.join("sdk");
        for f in [
            "Cargo.toml",
            "src/lib.rs",
            "wit/deps/host/host.wit",
            "target/debug/x",
            ".git/HEAD",
            "src/.lib.rs.swp",
        ] {
            let p = sdk.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, f).unwrap();
        }
        let files: Vec<String> = crate_files(&sdk).into_iter().map(|(r, _)| r).collect();
        assert_eq!(
            files,
            ["Cargo.toml", "src/lib.rs", "wit/deps/host/host.wit"]
        );
        let code = sdk_source(&root);
        let lib = sdk.join("src/lib.rs").display().to_string();
        assert!(
            code.contains(&format!("(\"src/lib.rs\", include_bytes!({lib:?})),")),
            "{code}"
        );
        assert!(code.contains("pub const WORKSPACE_MANIFEST: &str = include_str!("));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
