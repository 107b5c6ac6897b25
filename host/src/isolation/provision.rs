//! Giving a new task worktree what the project needs and git does not hold:
//! `[scope] carry` copies named paths from the user's checkout (copy-on-write where
//! the filesystem allows: `cp --reflink=auto`), and `[scope] setup` runs commands
//! once in the worktree.

use std::path::{Component, Path};
use std::time::{Duration, Instant};

use super::IsolationError;
use super::cmd::Cmd;
use super::git::Git;

/// How long one `[scope] setup` command may run.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long one carry copy may take.
const CARRY_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Whether `rel` is a relative path that stays inside its base.
pub fn is_inner_path(rel: &str) -> bool {
    let p = Path::new(rel);
    !rel.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && p.components().any(|c| matches!(c, Component::Normal(_)))
}

/// Copy each `carry` path (relative to the workspace) from the user's workspace to
/// the worktree's. A path the base already holds as files is skipped (it is in the
/// worktree); a missing one is skipped. Returns notices.
pub fn carry(
    top: &Git,
    user_ws: &Path,
    ws: &Path,
    carry: &[String],
) -> Result<Vec<String>, IsolationError> {
    let mut notices = Vec::new();
    for rel in carry {
        let rel = rel.trim_end_matches('/');
        if !is_inner_path(rel) {
            return Err(IsolationError::Carry {
                path: user_ws.join(rel),
                detail: "a carry path must be relative and stay inside the workspace".into(),
            });
        }
        let from = user_ws.join(rel);
        if std::fs::symlink_metadata(&from).is_err() {
            notices.push(format!(
                "[scope] carry: {} does not exist in your checkout; nothing carried",
                from.display()
            ));
            continue;
        }
        // Held by git (as files, not as a submodule or nested repository): already here.
        let ws_git = Git {
            dir: user_ws.to_owned(),
            ..top.clone()
        };
        let held = ws_git.run(["ls-files", "-z", "--stage", "--", rel])?;
        let held = super::git::split_z(&held);
        if !held.is_empty() && held.iter().all(|l| !l.starts_with("160000")) {
            notices.push(format!(
                "[scope] carry: {rel} is tracked by git, so the worktree has it already; nothing carried"
            ));
            continue;
        }
        let to = ws.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|source| IsolationError::Io {
                action: "create the carry destination",
                path: parent.to_owned(),
                source,
            })?;
        }
        let is_dir = std::fs::symlink_metadata(&from).is_ok_and(|m| m.is_dir());
        if is_dir && to.exists() {
            // An empty submodule directory from the checkout: fill it.
            let _ = std::fs::remove_dir(&to);
        }
        let started = Instant::now();
        copy(&from, &to)?;
        notices.push(format!(
            "[scope] carry: copied {rel} into the worktree in {:.1}s",
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(notices)
}

/// `cp --reflink=auto -a FROM TO` (copy-on-write where the filesystem allows),
/// falling back to `cp -a` where `cp` has no `--reflink`.
fn copy(from: &Path, to: &Path) -> Result<(), IsolationError> {
    let run = |reflink: bool| {
        let mut c = Cmd::new("cp").timeout(CARRY_TIMEOUT);
        if reflink {
            c = c.arg("--reflink=auto");
        }
        c.arg("-a").arg("--").arg(from).arg(to).run()
    };
    let err = |detail: String| IsolationError::Carry {
        path: from.to_owned(),
        detail,
    };
    let out = run(true).map_err(|e| err(format!("cannot run cp: {e}")))?;
    if out.success() {
        return Ok(());
    }
    let reflink_unknown = String::from_utf8_lossy(&out.stderr).contains("reflink");
    if reflink_unknown {
        let out = run(false).map_err(|e| err(format!("cannot run cp: {e}")))?;
        if out.success() {
            return Ok(());
        }
        return Err(err(format!("cp failed: {}", out.tail(500))));
    }
    Err(err(if out.timed_out {
        format!(
            "cp did not finish in {}",
            humantime::format_duration(CARRY_TIMEOUT)
        )
    } else {
        format!("cp failed: {}", out.tail(500))
    }))
}

/// Run each setup command in `ws` with kazi's environment, its output appended to
/// `log`; the first failure stops.
pub fn setup(ws: &Path, commands: &[Vec<String>], log: &Path) -> Result<(), IsolationError> {
    for argv in commands {
        let Some((program, args)) = argv.split_first() else {
            continue;
        };
        let display = argv.join(" ");
        let fail = |detail: String| IsolationError::Setup {
            command: display.clone(),
            detail,
            log: log.to_owned(),
        };
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| {
                use std::io::Write;
                writeln!(f, "$ {display}")
            });
        // A relative program with a slash is relative to the workspace.
        let program = if program.contains('/') && Path::new(program).is_relative() {
            ws.join(program).into_os_string()
        } else {
            program.into()
        };
        let mut c = Cmd::new(&program).args(args).cwd(ws).timeout(SETUP_TIMEOUT);
        c.log = Some(log.to_owned());
        let out = c.run().map_err(|e| {
            fail(if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "could not start: `{}` was not found",
                    program.to_string_lossy()
                )
            } else {
                format!("could not start: {e}")
            })
        })?;
        if out.timed_out {
            return Err(fail(format!(
                "did not finish in {}",
                humantime::format_duration(SETUP_TIMEOUT)
            )));
        }
        if !out.success() {
            let tail = log_tail(log, 600);
            return Err(fail(match out.status {
                Some(code) => format!("exited with {code}: {tail}"),
                None => format!("was killed by a signal: {tail}"),
            }));
        }
    }
    Ok(())
}

/// The last `max` bytes of the log, trimmed (read from the end: a setup may log
/// gigabytes).
fn log_tail(log: &Path, max: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(len.saturating_sub(max))).is_err()
        || f.take(max).read_to_end(&mut buf).is_err()
    {
        return String::new();
    }
    String::from_utf8_lossy(&buf).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carry_paths_stay_inside() {
        assert!(is_inner_path(".venv"));
        assert!(is_inner_path("a/b"));
        assert!(is_inner_path("./target"));
        assert!(!is_inner_path("../x"));
        assert!(!is_inner_path("/abs"));
        assert!(!is_inner_path("a/../../b"));
        assert!(!is_inner_path(""));
        assert!(!is_inner_path("."));
    }

    #[test]
    fn setup_runs_in_the_workspace_and_reports_failures_with_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("setup.log");
        setup(
            dir.path(),
            &[vec![
                "sh".into(),
                "-c".into(),
                "echo made > made.txt".into(),
            ]],
            &log,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("made.txt")).unwrap(),
            "made\n"
        );
        let err = setup(
            dir.path(),
            &[vec![
                "sh".into(),
                "-c".into(),
                "echo npm ERR! no lockfile >&2; exit 7".into(),
            ]],
            &log,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`sh -c echo npm ERR! no lockfile >&2; exit 7` exited with 7"),
            "{err}"
        );
        assert!(err.contains("npm ERR! no lockfile"), "{err}");
        assert!(err.contains("setup.log"), "{err}");
        let err = setup(dir.path(), &[vec!["no-such-program-kazi".into()]], &log)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`no-such-program-kazi` was not found"),
            "{err}"
        );
    }
}
