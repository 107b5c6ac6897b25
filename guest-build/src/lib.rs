//! Compiles guest crates of this workspace for `wasm32-wasip2` from a build script.
//!
//! Used by `host/build.rs` (the builtin predicates and profiles, embedded in the
//! binary) and `tests/build.rs` (the adversarial guests); `kazi predicate build`
//! shares [`cargo_build`], [`is_component`] and [`component_path`] so that a user's
//! predicate is built the same way. Each guest is built by its
//! own nested `cargo build` so that `kazi-sdk` features never unify across a
//! predicate and a profile, into a target directory of its own (a nested cargo on
//! the outer target directory would wait on the outer build's lock forever), with
//! inherited compiler flags cleared (an inherited flag once turned components
//! into plain modules).

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod embed;

/// The guest target triple.
pub const TARGET: &str = "wasm32-wasip2";

/// The preamble of a component binary: `\0asm` and the component-model layer.
const COMPONENT_MAGIC: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// Variables that carry compiler flags meant for the host; a guest build clears them.
pub const HOST_FLAG_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
];

/// `cargo build --release --target wasm32-wasip2` with [`HOST_FLAG_VARS`] cleared;
/// the caller adds the working directory and any further arguments.
pub fn cargo_build(cargo: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(cargo);
    command.args(["build", "--release", "--target", TARGET]);
    for var in HOST_FLAG_VARS {
        command.env_remove(var);
    }
    command
}

/// Whether `bytes` is a WebAssembly component (not a core module, not junk).
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.starts_with(&COMPONENT_MAGIC)
}

/// Where cargo writes the release component of the library `lib_name` under
/// `target_dir` (`-` in the name becomes `_`).
pub fn component_path(target_dir: &Path, lib_name: &str) -> PathBuf {
    target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", lib_name.replace('-', "_")))
}

/// One built guest.
#[derive(Debug, Clone)]
pub struct Built {
    /// Cargo package name, such as `kazi-predicate-file`.
    pub package: String,
    /// Absolute path of the component.
    pub path: PathBuf,
}

/// The workspace root, from a build script's `CARGO_MANIFEST_DIR` one level down.
pub fn workspace_root() -> PathBuf {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run from a build script"));
    manifest
        .parent()
        .expect("crate inside the workspace")
        .to_path_buf()
}

/// Where guests are built: `$CARGO_TARGET_DIR/guests`, else `<root>/target/guests`.
pub fn guest_target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let dir = if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            };
            dir.join("guests")
        }
        None => root.join("target").join("guests"),
    }
}

/// Install the guest target into the toolchain building this crate when it lacks it:
/// `rust-toolchain.toml` lists the target, but where `RUSTUP_AUTO_INSTALL=0` (and on
/// any fresh CI machine) rustup never adds it by itself, and `cargo build` would fail
/// deep in a nested build. Says what it did as a cargo warning.
pub fn ensure_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let Some(sysroot) = sysroot else { return };
    if sysroot.join("lib/rustlib").join(TARGET).is_dir() {
        return;
    }
    // The rustup proxy tells its children which toolchain it runs.
    let mut add = Command::new("rustup");
    add.args(["target", "add", TARGET]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        add.args(["--toolchain", &toolchain]);
    }
    match add.output() {
        Ok(o) if o.status.success() => println!(
            "cargo:warning=installed the {TARGET} target into {} (rust-toolchain.toml lists it; rustup does not add it by itself where RUSTUP_AUTO_INSTALL=0)",
            sysroot.display()
        ),
        Ok(o) => println!(
            "cargo:warning=the {TARGET} target is missing and `rustup target add {TARGET}` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => println!(
            "cargo:warning=the {TARGET} target is missing and rustup could not be run ({e}); hint: install the target for your toolchain"
        ),
    }
}

/// Build each `(package, crate_dir)` pair and return the component paths. Prints the
/// `rerun-if-changed` lines for the guest sources, the SDK and the lock file.
///
/// Panics with the cargo output on failure: this runs inside a build script, where a
/// panic is how a failure is reported.
pub fn build(root: &Path, guests: &[(&str, &Path)]) -> Vec<Built> {
    let target_dir = guest_target_dir(root);
    println!("cargo:rerun-if-changed={}", root.join("sdk").display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );
    println!("cargo:rerun-if-env-changed=KAZI_GUEST_CARGO");
    let cargo = std::env::var("KAZI_GUEST_CARGO")
        .or_else(|_| std::env::var("CARGO"))
        .unwrap_or_else(|_| "cargo".to_owned());
    ensure_target();
    let mut out = Vec::new();
    for (package, dir) in guests {
        println!("cargo:rerun-if-changed={}", dir.display());
        let status = cargo_build(&cargo)
            .current_dir(root)
            .args(["--locked", "-p", package])
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("CARGO_PRIMARY_PACKAGE")
            .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
            .status()
            .unwrap_or_else(|e| panic!("failed to run `{cargo}` to build guest {package}: {e}"));
        assert!(
            status.success(),
            "failed to build guest {package} for {TARGET} ({status}); \
             hint: `rustup target add {TARGET}` if the target is missing (rust-toolchain.toml lists it)"
        );
        let path = component_path(&target_dir, package);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "guest {package} built but {} is unreadable: {e}",
                path.display()
            )
        });
        assert!(
            is_component(&bytes),
            "guest {package} at {} is not a WebAssembly component (a core module or junk); \
             check that no RUSTFLAGS leak into the guest build",
            path.display()
        );
        out.push(Built {
            package: (*package).to_owned(),
            path,
        });
    }
    out
}
