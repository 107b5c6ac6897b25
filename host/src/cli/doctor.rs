//! `kazi doctor`: what kazi finds on this machine — the agent CLIs and their
//! versions, the toolchain for writing predicates, the run database, the component
//! cache, the trusted keys — and what to fix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::CliError;
use super::output::Printer;
use crate::exit;
use crate::sandbox::ArtifactCache;
use crate::store::Store;

/// Version of the `--json` report of `kazi doctor`.
pub const DOCTOR_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The run database [default: $KAZI_DB, else kazi/kazi.db in the platform data directory].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

/// One line of the report.
struct Check {
    area: &'static str,
    name: String,
    ok: bool,
    detail: String,
    hint: Option<String>,
}

/// The agent CLIs the builtin profiles drive, and the flag that prints a version.
const AGENTS: &[(&str, &str)] = &[
    ("claude", "--version"),
    ("opencode", "--version"),
    ("codex", "--version"),
];

pub async fn run(args: DoctorArgs, printer: &Printer) -> Result<u8, CliError> {
    let mut checks = Vec::new();
    let path = std::env::var_os("PATH");
    for (agent, flag) in AGENTS {
        let found = crate::process::resolve_program(agent, path.as_deref(), Path::new("/"));
        checks.push(match found {
            Some(p) => {
                let version = version_of(&p, flag).await;
                Check {
                    area: "agent",
                    name: (*agent).into(),
                    ok: true,
                    detail: format!("{} ({})", p.display(), version.as_deref().unwrap_or("version unknown")),
                    hint: None,
                }
            }
            None => Check {
                area: "agent",
                name: (*agent).into(),
                ok: false,
                detail: "not found on PATH".into(),
                hint: Some(format!(
                    "install it if your goals use `profile = \"{agent}\"` (the `command` profile needs no CLI)"
                )),
            },
        });
    }
    checks.push(wasm_target().await);
    checks.push(database(
        args.db.clone().unwrap_or_else(Store::default_path),
    ));
    checks.push(cache());
    checks.push(trust());

    let healthy = checks
        .iter()
        .all(|c| c.ok || c.area == "agent" || c.area == "authoring");
    if args.json {
        printer.json(&json!({
            "schema_version": DOCTOR_SCHEMA_VERSION,
            "version": env!("CARGO_PKG_VERSION"),
            "healthy": healthy,
            "checks": checks.iter().map(|c| json!({
                "area": c.area, "name": c.name, "ok": c.ok, "detail": c.detail, "hint": c.hint,
            })).collect::<Vec<_>>(),
        }));
    } else {
        printer.out(&format!("kazi {}", env!("CARGO_PKG_VERSION")));
        for c in &checks {
            printer.out(&format!(
                "{} {:<9} {:<13} {}",
                if c.ok { "ok  " } else { "warn" },
                c.area,
                c.name,
                c.detail
            ));
            if let Some(h) = &c.hint {
                printer.out(&format!("                         hint: {h}"));
            }
        }
    }
    Ok(if healthy {
        exit::SUCCESS
    } else {
        exit::NOT_CONVERGED
    })
}

/// The first line `program flag` prints within 5 s, if any.
async fn version_of(program: &Path, flag: &str) -> Option<String> {
    let spawn = crate::process::Spawn {
        program: program.to_owned(),
        args: vec![flag.to_owned()],
        cwd: std::env::temp_dir(),
        env: std::env::vars_os().collect(),
        stdin: None,
        timeout: Duration::from_secs(5),
        output_cap: 4096,
    };
    let f = crate::process::run(spawn).await.ok()?;
    let text = String::from_utf8_lossy(if f.stdout.is_empty() {
        &f.stderr
    } else {
        &f.stdout
    })
    .into_owned();
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| crate::verdict::truncate_middle(l, 80))
}

/// Whether `kazi predicate build` can compile Rust predicates here.
async fn wasm_target() -> Check {
    let path = std::env::var_os("PATH");
    let Some(rustup) = crate::process::resolve_program("rustup", path.as_deref(), Path::new("/"))
    else {
        return Check {
            area: "authoring",
            name: "wasm32-wasip2".into(),
            ok: false,
            detail: "rustup not found: Rust predicates cannot be built here (running goals needs nothing of this)".into(),
            hint: Some("install rustup, then `rustup target add wasm32-wasip2`".into()),
        };
    };
    let spawn = crate::process::Spawn {
        program: rustup,
        args: vec!["target".into(), "list".into(), "--installed".into()],
        cwd: std::env::temp_dir(),
        env: std::env::vars_os().collect(),
        stdin: None,
        timeout: Duration::from_secs(10),
        output_cap: 64 * 1024,
    };
    let installed = match crate::process::run(spawn).await {
        Ok(f) => String::from_utf8_lossy(&f.stdout)
            .lines()
            .any(|l| l.trim() == "wasm32-wasip2"),
        Err(_) => false,
    };
    Check {
        area: "authoring",
        name: "wasm32-wasip2".into(),
        ok: installed,
        detail: if installed {
            "installed: `kazi predicate build` can compile Rust predicates".into()
        } else {
            "not installed for the default toolchain".into()
        },
        hint: (!installed).then(|| "rustup target add wasm32-wasip2".into()),
    }
}

fn database(path: PathBuf) -> Check {
    let name = "database".to_owned();
    match Store::open_read_only(&path) {
        Ok(None) => Check {
            area: "data",
            name,
            ok: true,
            detail: format!(
                "{} (not created yet: the first `kazi run` creates it)",
                path.display()
            ),
            hint: None,
        },
        Ok(Some(store)) => {
            let size = file_size(&path);
            match store.health() {
                Ok((version, runs)) => Check {
                    area: "data",
                    name,
                    ok: true,
                    detail: format!(
                        "{} ({}, schema {version}, {runs} run{}, integrity ok)",
                        path.display(),
                        human_size(size),
                        if runs == 1 { "" } else { "s" }
                    ),
                    hint: None,
                },
                Err(e) => Check {
                    area: "data",
                    name,
                    ok: false,
                    detail: e.to_string(),
                    hint: Some("move the file aside; kazi starts a new database".into()),
                },
            }
        }
        Err(e) => Check {
            area: "data",
            name,
            ok: false,
            detail: e.to_string(),
            hint: None,
        },
    }
}

fn cache() -> Check {
    match ArtifactCache::default_dir() {
        Some(dir) => Check {
            area: "data",
            name: "cache".into(),
            ok: true,
            detail: format!("{} ({})", dir.display(), human_size(dir_size(&dir))),
            hint: None,
        },
        None => Check {
            area: "data",
            name: "cache".into(),
            ok: false,
            detail: "no cache directory: components are compiled on every run".into(),
            hint: Some("set KAZI_CACHE to a directory".into()),
        },
    }
}

fn trust() -> Check {
    let path = crate::pkg::sign::TrustStore::default_path();
    match crate::pkg::sign::TrustStore::read(&path) {
        Ok(store) => Check {
            area: "packages",
            name: "trust".into(),
            ok: true,
            detail: format!(
                "{} trusted key{} in {}",
                store.keys.len(),
                if store.keys.len() == 1 { "" } else { "s" },
                path.display()
            ),
            hint: None,
        },
        Err(e) => Check {
            area: "packages",
            name: "trust".into(),
            ok: false,
            detail: e.to_string(),
            hint: None,
        },
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Bytes under `dir` (not following links).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
