//! Compiles the builtin predicates and profiles for wasm32-wasip2 and embeds them:
//! one `kazi` binary is all a user installs.

use std::fmt::Write as _;

/// (builtin name, cargo package, crate directory relative to the workspace root)
const PREDICATES: &[(&str, &str, &str)] = &[
    ("command", "kazi-predicate-command", "predicates/command"),
    ("file", "kazi-predicate-file", "predicates/file"),
    ("http", "kazi-predicate-http", "predicates/http"),
    ("log", "kazi-predicate-log", "predicates/log"),
];
const PROFILES: &[(&str, &str, &str)] = &[
    ("claude", "kazi-profile-claude", "profiles/claude"),
    ("codex", "kazi-profile-codex", "profiles/codex"),
    ("command", "kazi-profile-command", "profiles/command"),
    ("opencode", "kazi-profile-opencode", "profiles/opencode"),
];

fn main() {
    let root = kazi_guest_build::workspace_root();
    let mut code = String::new();
    for (table, list) in [("PREDICATES", PREDICATES), ("PROFILES", PROFILES)] {
        let dirs: Vec<_> = list.iter().map(|(_, _, dir)| root.join(dir)).collect();
        let guests: Vec<_> = list
            .iter()
            .zip(&dirs)
            .map(|((_, pkg, _), dir)| (*pkg, dir.as_path()))
            .collect();
        let built = kazi_guest_build::build(&root, &guests);
        writeln!(
            code,
            "/// Builtin {} as (name, component bytes).",
            table.to_lowercase()
        )
        .unwrap();
        writeln!(code, "pub const {table}: &[(&str, &[u8])] = &[").unwrap();
        for ((name, _, _), b) in list.iter().zip(&built) {
            writeln!(
                code,
                "    ({name:?}, include_bytes!({:?})),",
                b.path.display().to_string()
            )
            .unwrap();
        }
        writeln!(code, "];").unwrap();
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("builtins.rs");
    std::fs::write(out, code).unwrap();

    // The SDK's sources (every file of sdk/) and the workspace manifest they inherit
    // from, embedded for `kazi predicate new` (host/src/authoring/sdk.rs), so that
    // authoring a predicate needs only the kazi binary, never this checkout.
    let sdk_files =
        std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("sdk_files.rs");
    kazi_guest_build::embed::write_sdk(&root, &sdk_files);
}
